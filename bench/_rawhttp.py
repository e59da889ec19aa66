"""A minimal keep-alive HTTP/1.1 client on asyncio streams, for load generation.

The benchmarks measure the server; a full-featured client (httpx) costs ~3 ms of CPU per
request on a slow 2-core machine, which then competes with the server it drives. This one
sends pre-encoded requests and reads ``Content-Length`` bodies, nothing more.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import orjson


class RawHttp:
    """One persistent connection; use one per concurrent client."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._common = f"Host: {self.host}:{self.port}\r\n{extra}".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawHttp:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._writer is not None:
            self._writer.close()

    async def request(
        self, method: str, path: str, payload: object = None, *, decode: bool = True
    ) -> tuple[int, object]:
        """Send one request; return (status, decoded JSON body, or the raw bytes)."""
        assert self._reader is not None and self._writer is not None
        body = b"" if payload is None else orjson.dumps(payload)
        head = f"{method} {path} HTTP/1.1\r\nContent-Length: {len(body)}\r\n".encode()
        if body:
            head += b"Content-Type: application/json\r\n"
        self._writer.write(head + self._common + b"\r\n" + body)
        header_block = await self._reader.readuntil(b"\r\n\r\n")
        lines = header_block.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        data = await self._reader.readexactly(length) if length else b""
        if not decode:
            return status, data
        return status, (orjson.loads(data) if data else None)
