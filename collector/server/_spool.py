"""An on-disk spool of accepted batches: append-only segment files, each append fsync'd.

A record is ``KWS1 | header length | body length | crc32 | header (JSON: table, token) |
body (Arrow IPC stream)``. A torn record at the end of a segment (a crash mid-append, never
acknowledged) fails its length or checksum and is skipped with the rest of that segment's tail.
Segments are sealed when they pass ``segment_bytes`` or when the drain wants the active one;
sealed segments are replayed oldest first and deleted once every record in them is stored.
Replaying a record twice is harmless: its deduplication token makes the second insert a no-op.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

__all__ = ["Spool", "SpoolFull", "SpooledBatch"]

_MAGIC = b"KWS1"
_HEAD = struct.Struct(">4sIII")
_NAME = re.compile(r"^(\d{12})\.seg$")


class SpoolFull(Exception):
    """The spool holds ``limit`` bytes already."""


@dataclass(frozen=True)
class SpooledBatch:
    """One spooled insert."""

    table: str
    token: str
    data: pa.Table


def _encode(table: str, token: str, data: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    body = sink.getvalue().to_pybytes()
    header = orjson.dumps({"table": table, "token": token})
    crc = zlib.crc32(header + body)
    return _HEAD.pack(_MAGIC, len(header), len(body), crc) + header + body


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append-only, fsync'd segments under ``directory``; thread-safe."""

    def __init__(
        self, directory: str | Path, limit_bytes: int, segment_bytes: int = 16 << 20
    ) -> None:
        if limit_bytes <= 0 or segment_bytes <= 0:
            raise ValueError("spool limit and segment size must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.limit_bytes = limit_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        segments = self.segments()
        self._next = (int(_NAME.match(segments[-1].name).group(1)) + 1) if segments else 1  # type: ignore[union-attr]
        self._active: Path | None = None  # reopened segments are never appended to
        self._size = sum(p.stat().st_size for p in segments)

    @property
    def size(self) -> int:
        """Bytes spooled and not yet drained."""
        return self._size

    def segments(self) -> list[Path]:
        """Segment files, oldest first."""
        return sorted(p for p in self.directory.iterdir() if _NAME.match(p.name))

    def append(self, table: str, token: str, data: pa.Table) -> None:
        """Write one batch durably (fsync) before returning; raises :class:`SpoolFull`."""
        record = _encode(table, token, data)
        with self._lock:
            if self._size + len(record) > self.limit_bytes:
                raise SpoolFull(f"spool at {self.directory} holds {self._size} bytes")
            if self._active is None or self._active.stat().st_size >= self.segment_bytes:
                self._active = self.directory / f"{self._next:012d}.seg"
                self._next += 1
                created = True
            else:
                created = False
            with open(self._active, "ab") as out:
                out.write(record)
                out.flush()
                os.fsync(out.fileno())
            if created:
                _fsync_dir(self.directory)
            self._size += len(record)

    def seal(self) -> list[Path]:
        """Close the active segment for appends; returns every segment, oldest first."""
        with self._lock:
            self._active = None
            return self.segments()

    def read(self, segment: Path) -> Iterator[SpooledBatch]:
        """The intact records of a segment, in order; stops at a torn or corrupt record."""
        data = segment.read_bytes()
        offset = 0
        while offset + _HEAD.size <= len(data):
            magic, head_len, body_len, crc = _HEAD.unpack_from(data, offset)
            start = offset + _HEAD.size
            end = start + head_len + body_len
            if magic != _MAGIC or end > len(data) or zlib.crc32(data[start:end]) != crc:
                return
            header = orjson.loads(data[start : start + head_len])
            table = ipc.open_stream(pa.py_buffer(data[start + head_len : end])).read_all()
            yield SpooledBatch(header["table"], header["token"], table)
            offset = end

    def remove(self, segment: Path) -> None:
        """Delete a drained segment."""
        with self._lock:
            size = segment.stat().st_size
            segment.unlink()
            self._size = max(0, self._size - size)
            if self._active == segment:
                self._active = None
