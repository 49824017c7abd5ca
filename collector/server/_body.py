"""Request bodies read with size limits, gzip inflated incrementally under a hard cap."""

from __future__ import annotations

import zlib

from fastapi import HTTPException
from starlette.requests import Request

__all__ = ["inflate", "read_body", "read_raw"]

_STEP = 1 << 16


async def read_raw(request: Request, max_bytes: int) -> tuple[bytes, bool]:
    """The body as sent and whether it is gzip (``Content-Encoding``); 413 past ``max_bytes``,
    415 for another encoding."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise HTTPException(415, f"Content-Encoding {encoding!r} is not supported (use gzip)")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise HTTPException(413, f"body larger than {max_bytes} bytes")
        chunks.append(chunk)
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), encoding == "gzip"


def inflate(data: bytes, max_inflated: int) -> bytes:
    """Decompress a gzip body; 413 past ``max_inflated``, 400 if the stream is broken.

    Inflation runs step by step and stops at ``max_inflated``, so a gzip bomb costs at most that
    much memory. Blocking (about 2 ms per MB inflated): call it off the event loop.
    """
    if not data:
        return b""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pieces: list[bytes] = []
    inflated = 0
    view = memoryview(data)
    for start in range(0, len(data), _STEP):
        try:
            piece = inflater.decompress(view[start : start + _STEP], max_inflated + 1 - inflated)
        except zlib.error as exc:
            raise HTTPException(400, f"body is not valid gzip: {exc}") from exc
        pieces.append(piece)
        inflated += len(piece)
        if inflated > max_inflated or inflater.unconsumed_tail:
            raise HTTPException(413, f"decompressed body larger than {max_inflated} bytes")
    if not inflater.eof:
        raise HTTPException(400, "body is not valid gzip: truncated stream")
    return b"".join(pieces)


async def read_body(request: Request, max_bytes: int, max_inflated: int) -> bytes:
    """The body, decompressed when ``Content-Encoding: gzip``; 413 past either limit, 400 if
    the gzip stream is broken."""
    data, gzipped = await read_raw(request, max_bytes)
    return inflate(data, max_inflated) if gzipped else data
