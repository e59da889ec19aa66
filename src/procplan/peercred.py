"""Who is on the other end of a local connection, as the kernel says (ADR 0009).

- A Unix socket: ``SO_PEERCRED`` gives the connecting process's uid.
- Loopback TCP: the client's socket is in this host's socket table (``/proc/net/tcp``,
  ``/proc/net/tcp6``) with its addresses the other way round, and the table names its uid.

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
    for client_host, server_host in candidates:
        family, client_hex = _hex_address(client_host)
        _, server_hex = _hex_address(server_host)
        uid = _table_uid(
            _TABLES[family], f"{client_hex}:{peer[1]:04X}", f"{server_hex}:{local[1]:04X}"
        )
        if uid is not None:
            return uid
    return None


def _table_uid(table: str, client: str, server: str) -> int | None:
    try:
        with open(table, encoding="ascii") as lines:
            next(lines, None)  # the header
            for line in lines:
                fields = line.split()
                if len(fields) > 7 and fields[1] == client and fields[2] == server:
                    return int(fields[7])
    except OSError:
        return None
    return None


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
