"""Request bodies read with size limits, gzip inflated incrementally under a hard cap."""

from __future__ import annotations

import zlib

from fastapi import HTTPException
from starlette.requests import Request

__all__ = ["read_body"]


async def read_body(request: Request, max_bytes: int, max_inflated: int) -> bytes:
    """The body, decompressed when ``Content-Encoding: gzip``; 413 past either limit, 400 if
    the gzip stream is broken. Inflation runs chunk by chunk and stops at ``max_inflated``, so
    a gzip bomb costs at most that much memory."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise HTTPException(415, f"Content-Encoding {encoding!r} is not supported (use gzip)")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    out = bytearray()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise HTTPException(413, f"body larger than {max_bytes} bytes")
        if inflater is None:
            out += chunk
            continue
        try:
            out += inflater.decompress(chunk, max_inflated + 1 - len(out))
        except zlib.error as exc:
            raise HTTPException(400, f"body is not valid gzip: {exc}") from exc
        if len(out) > max_inflated or inflater.unconsumed_tail:
            raise HTTPException(413, f"decompressed body larger than {max_inflated} bytes")
    if inflater is not None:
        if received and not inflater.eof:
            raise HTTPException(400, "body is not valid gzip: truncated stream")
        if not received:
            return b""
    return bytes(out)
