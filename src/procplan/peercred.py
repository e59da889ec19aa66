"""Who is on the other end of a local connection, as the kernel says (ADR 0009).

- A Unix socket: ``SO_PEERCRED`` gives the connecting process's uid.
- Loopback TCP: the client's socket is this host's socket with the connection's addresses
  the other way round, and the kernel names its uid: asked by its four addresses over
  netlink (``NETLINK_SOCK_DIAG``, what ``ss`` uses: one hash lookup in the kernel, a few
  microseconds), or, where netlink is refused, found in the socket table (``/proc/net/tcp``,
  ``/proc/net/tcp6``), whose size grows with every connection in TIME_WAIT (issue #18: 10,000
  lines and ~60 % of the server's CPU under ProcPlan 1.0's one-connection-per-request load).

The server's HTTP protocol (``PeerHttpProtocol``) asks once per connection, when it is
made, and hands the uid to every request of that connection in its ASGI ``state``, so that a
request costs nothing and a port reused by another process later is a new connection with
its own answer. Connections from other hosts get no uid: their users sign in.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import struct
from pathlib import Path
from typing import Any

from procplan.api.identity import PEER_UID

LOG = logging.getLogger("procplan.peercred")
_PEERCRED = struct.Struct("3i")  # pid, uid, gid
_TABLES = {socket.AF_INET: "/proc/net/tcp", socket.AF_INET6: "/proc/net/tcp6"}

# linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_NLMSG_HEADER = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_DIAG_REQUEST = struct.Struct("=BBBBI")  # family, protocol, ext, pad, states
_DIAG_PORTS = struct.Struct("!HH")  # source, destination (network order)
_DIAG_TAIL = struct.Struct("=III")  # interface, cookie (two words)
_NO_COOKIE = 0xFFFFFFFF
_ALL_STATES = 0xFFFFFFFF
# inet_diag_msg after the header: family, state, timer, retrans (4), sockid (48), expires,
# rqueue, wqueue (12), then the uid.
_DIAG_UID_AT = _NLMSG_HEADER.size + 4 + 48 + 12
_UID = struct.Struct("=I")
_ERRNO = struct.Struct("=i")


class _NetlinkRefused(Exception):
    """This host does not answer sock_diag requests (no netlink, or no inet_diag)."""


def _hex_address(host: str) -> tuple[socket.AddressFamily, str]:
    """An address as the socket table writes it: 32-bit words in host (little-endian) order."""
    address = ipaddress.ip_address(host.split("%", 1)[0])
    packed = address.packed
    words = struct.unpack(f"<{len(packed) // 4}I", packed)
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    return family, "".join(f"{word:08X}" for word in words)


def _mapped(host: str) -> str:
    """``127.0.0.1`` as a dual-stack socket's table writes it (``::ffff:127.0.0.1``)."""
    return f"::ffff:{host}"


def _is_loopback(host: str) -> bool:
    if host.startswith(("127.", "::ffff:127.")) or host == "::1":  # the usual ones, no parse
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def loopback_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The uid owning the client socket ``peer`` → ``local`` on this host, if it is local."""
    if not _is_loopback(peer[0]):
        return None
    candidates = [(peer[0], local[0])]
    if ":" not in peer[0]:  # an IPv4 client of a dual-stack listener sits in tcp6
        candidates.append((_mapped(peer[0]), _mapped(local[0])))
    try:
        for client_host, server_host in candidates:
            uid = _diag_uid((client_host, peer[1]), (server_host, local[1]))
            if uid is not None:
                return uid
        return None
    except _NetlinkRefused:
        pass
    for client_host, server_host in candidates:
        family, client_hex = _hex_address(client_host)
        _, server_hex = _hex_address(server_host)
        uid = _table_uid(
            _TABLES[family], f"{client_hex}:{peer[1]:04X}", f"{server_hex}:{local[1]:04X}"
        )
        if uid is not None:
            return uid
    return None


def _diag_uid(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The uid of the TCP socket ``client`` → ``server`` by one exact sock_diag lookup;
    ``None`` when the kernel has no such socket. Raises ``_NetlinkRefused`` when this host
    answers no sock_diag request at all (the caller then reads the socket table)."""
    family = socket.AF_INET6 if ":" in client[0] else socket.AF_INET
    source = socket.inet_pton(family, client[0].split("%", 1)[0]).ljust(16, b"\0")
    target = socket.inet_pton(family, server[0].split("%", 1)[0]).ljust(16, b"\0")
    sockid = (
        _DIAG_PORTS.pack(client[1], server[1])
        + source
        + target
        + _DIAG_TAIL.pack(0, _NO_COOKIE, _NO_COOKIE)
    )
    body = _DIAG_REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, _ALL_STATES) + sockid
    header = _NLMSG_HEADER.pack(
        _NLMSG_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0
    )
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as diag:
            diag.sendto(header + body, (0, 0))
            answer = diag.recv(4096)
    except OSError as exc:
        raise _NetlinkRefused(str(exc)) from exc
    kind = _NLMSG_HEADER.unpack_from(answer)[1]
    if kind == _SOCK_DIAG_BY_FAMILY and len(answer) >= _DIAG_UID_AT + _UID.size:
        return int(_UID.unpack_from(answer, _DIAG_UID_AT)[0])
    if kind == _NLMSG_ERROR and _ERRNO.unpack_from(answer, _NLMSG_HEADER.size)[0] == -2:
        return None  # ENOENT: no such socket
    raise _NetlinkRefused(f"sock_diag answered message type {kind}")


def _table_uid(table: str, client: str, server: str) -> int | None:
    """The uid column of the table's line for ``client`` → ``server``: found by a substring
    search over the whole table (a line split per entry costs ~100× more on large tables)."""
    try:
        with open(table, encoding="ascii") as lines:
            content = lines.read()
    except OSError:
        return None
    at = content.find(f" {client} {server} ")
    if at < 0:
        return None
    fields = content[at : content.find("\n", at)].split()
    return int(fields[7 - 1]) if len(fields) > 6 else None


def unix_peer_uid(sock: Any) -> int | None:
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    except OSError:
        return None
    return int(_PEERCRED.unpack(raw)[1])


def transport_uid(transport: Any) -> int | None:
    """The peer's uid for a connection's transport, or ``None`` when it is not local."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    if sock.family == socket.AF_UNIX:
        return unix_peer_uid(sock)
    peer = transport.get_extra_info("peername")
    local = transport.get_extra_info("sockname")
    if not peer or not local:
        return None
    return loopback_uid((peer[0], int(peer[1])), (local[0], int(local[1])))


def unix_listener(path: Path) -> socket.socket:
    """A listening Unix socket that every local user may connect to (the kernel tells us who
    they are): a stale socket file is replaced, anything else at ``path`` is refused."""
    if path.is_socket():
        path.unlink()
    elif path.exists():
        raise ValueError(f"{path} exists and is not a socket")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o666)
    listener.listen(2048)
    return listener


def _protocol_base() -> type:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn without httptools
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol


_Base: Any = _protocol_base()


class PeerHttpProtocol(_Base):  # type: ignore[misc]
    """uvicorn's HTTP protocol, plus the peer's uid in every request's ``state``."""

    app_state: dict[str, Any]

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        try:
            uid = transport_uid(transport)
        except Exception:  # never fail a connection over this: it just has no peer identity
            LOG.exception("could not read the peer's credentials")
            uid = None
        if uid is not None:
            self.app_state = {**self.app_state, PEER_UID: uid}
