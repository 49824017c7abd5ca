"""An on-disk spool of accepted batches: append-only segment files, appends fsync'd in groups.

Every accepted batch is written here before its request is acknowledged, and inserted into the
store behind it (see ``_writer``). A record is ``KWS1 | header length | body length | crc32 |
header (JSON) | body``. A batch record's header holds its table and deduplication token and its
body is an Arrow IPC stream; a *group* record (empty body) lists the tokens of batches about to
be inserted together under one token, so a replay after a crash inserts them the same way and
the engine's deduplication drops a group that was already stored.

Appends from concurrent requests share fsyncs: each writes its record, then one of them syncs
everything written so far while the others wait for that sync. A torn record at the end of a
segment (a crash mid-append, never acknowledged) fails its length or checksum and ends the read
of that segment. Segments are removed oldest first once every batch in them is stored.
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

__all__ = ["Spool", "SpoolFull", "SpoolRecord", "SpoolRef", "SpooledBatch"]

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


@dataclass(frozen=True)
class SpoolRef:
    """Where a record lies: its segment, byte offset and length."""

    segment: Path
    offset: int
    length: int


@dataclass(frozen=True)
class SpoolRecord:
    """A record's header and place, body not decoded; ``members`` is set for a group record."""

    table: str
    token: str
    members: tuple[str, ...]
    rows: int
    ref: SpoolRef


def _frame(header: dict[str, object], body: bytes) -> bytes:
    head = orjson.dumps(header)
    crc = zlib.crc32(body, zlib.crc32(head))
    return _HEAD.pack(_MAGIC, len(head), len(body), crc) + head + body


def _encode(table: str, token: str, data: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    header = {"table": table, "token": token, "rows": data.num_rows}
    return _frame(header, sink.getvalue().to_pybytes())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Spool:
    """Append-only, fsync'd segments under ``directory``; thread-safe.

    ``pending`` counts, per segment, the batches not yet stored (``track``/``done``); ``collect``
    removes the segments, oldest first, that hold none.
    """

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
        self._sync_lock = threading.Lock()
        segments = self.segments()
        self._next = (int(_NAME.match(segments[-1].name).group(1)) + 1) if segments else 1  # type: ignore[union-attr]
        self._active: Path | None = None  # reopened segments are never appended to
        self._fd = -1
        self._active_size = 0
        self._written = 0  # records written so far, and how many of them are fsync'd
        self._synced = 0
        self._pending: dict[Path, int] = {}
        self._size = sum(p.stat().st_size for p in segments)

    @property
    def size(self) -> int:
        """Bytes spooled and not yet removed."""
        return self._size

    def segments(self) -> list[Path]:
        """Segment files, oldest first."""
        return sorted(p for p in self.directory.iterdir() if _NAME.match(p.name))

    def append(self, table: str, token: str, data: pa.Table) -> SpoolRef:
        """Write one batch durably (fsync) before returning; raises :class:`SpoolFull`."""
        return self._append(_encode(table, token, data), limited=True, pending=True)

    def append_group(self, table: str, token: str, members: list[str]) -> None:
        """Record durably that ``members`` are inserted together into ``table`` as ``token``."""
        self._append(
            _frame({"table": table, "token": token, "members": members}, b""),
            limited=False,
            pending=False,
        )

    def _append(self, record: bytes, *, limited: bool, pending: bool) -> SpoolRef:
        with self._lock:
            if limited and self._size + len(record) > self.limit_bytes:
                raise SpoolFull(f"spool at {self.directory} holds {self._size} bytes")
            if self._active is None or self._active_size >= self.segment_bytes:
                self._rotate()
            assert self._active is not None
            ref = SpoolRef(self._active, self._active_size, len(record))
            _write_all(self._fd, record)
            self._active_size += len(record)
            self._size += len(record)
            self._written += 1
            mark = self._written
            if pending:
                self._pending[self._active] = self._pending.get(self._active, 0) + 1
        self._sync(mark)
        return ref

    def _rotate(self) -> None:
        """Start a new segment (under ``_lock``); the previous one is synced and closed."""
        self._close_active()
        self._active = self.directory / f"{self._next:012d}.seg"
        self._next += 1
        self._fd = os.open(self._active, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._active_size = 0
        _fsync_dir(self.directory)  # the new name must survive a crash before anything in it

    def _close_active(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
        self._fd = -1
        self._active = None

    def _sync(self, mark: int) -> None:
        """Return once record number ``mark`` is on disk; one fsync covers every waiter."""
        with self._sync_lock:
            if self._synced >= mark:
                return
            with self._lock:
                target = self._written
                if self._fd < 0:  # sealed or rotated: that closing fsync'd everything
                    self._synced = target
                    return
                fd = os.dup(self._fd)  # stays valid if the segment rotates meanwhile
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._synced = target

    def seal(self) -> list[Path]:
        """Close the active segment for appends; returns every segment, oldest first."""
        with self._lock:
            self._close_active()
            return self.segments()

    def read(self, segment: Path) -> Iterator[SpooledBatch]:
        """The intact batch records of a segment, in order; stops at a torn or corrupt record."""
        for record in self.scan(segment):
            if not record.members:
                yield SpooledBatch(record.table, record.token, self.load(record.ref))

    def scan(self, segment: Path) -> Iterator[SpoolRecord]:
        """Every intact record of a segment (batches and groups), bodies left on disk."""
        data = segment.read_bytes()
        offset = 0
        while offset + _HEAD.size <= len(data):
            magic, head_len, body_len, crc = _HEAD.unpack_from(data, offset)
            start = offset + _HEAD.size
            end = start + head_len + body_len
            if magic != _MAGIC or end > len(data) or zlib.crc32(data[start:end]) != crc:
                return
            header = orjson.loads(data[start : start + head_len])
            members = tuple(header.get("members", ()))
            ref = SpoolRef(segment, offset, end - offset)
            rows = int(header.get("rows", 1000))  # records spooled by older versions: a guess
            yield SpoolRecord(header["table"], header["token"], members, rows, ref)
            offset = end

    def load(self, ref: SpoolRef) -> pa.Table:
        """The Arrow table of the batch record at ``ref``."""
        with open(ref.segment, "rb") as source:
            source.seek(ref.offset)
            record = source.read(ref.length)
        _, head_len, _, _ = _HEAD.unpack_from(record)
        body = record[_HEAD.size + head_len :]
        return ipc.open_stream(pa.py_buffer(body)).read_all()

    def track(self, ref: SpoolRef) -> None:
        """Count a batch found in ``ref.segment`` at start-up as not yet stored."""
        with self._lock:
            self._pending[ref.segment] = self._pending.get(ref.segment, 0) + 1

    def done(self, ref: SpoolRef) -> None:
        """The batch at ``ref`` is stored (or set aside)."""
        with self._lock:
            left = self._pending.get(ref.segment, 0) - 1
            if left > 0:
                self._pending[ref.segment] = left
            else:
                self._pending.pop(ref.segment, None)

    def collect(self) -> None:
        """Remove segments whose batches are all stored, oldest first, stopping at the first
        that still holds one (a group record is never removed before the batches it names)."""
        with self._lock:
            for segment in self.segments():
                if self._pending.get(segment):
                    return
                if segment == self._active:
                    self._close_active()
                self._size = max(0, self._size - segment.stat().st_size)
                segment.unlink()

    def set_aside(self, ref: SpoolRef) -> Path:
        """Copy the record at ``ref`` to ``dead/<segment name>``; returns that file."""
        dead = self.directory / "dead"
        dead.mkdir(exist_ok=True)
        target = dead / ref.segment.name
        with open(ref.segment, "rb") as source, open(target, "ab") as out:
            source.seek(ref.offset)
            out.write(source.read(ref.length))
            out.flush()
            os.fsync(out.fileno())
        return target

    def remove(self, segment: Path) -> None:
        """Delete a segment whatever it holds."""
        with self._lock:
            if self._active == segment:
                self._close_active()
            size = segment.stat().st_size
            segment.unlink()
            self._pending.pop(segment, None)
            self._size = max(0, self._size - size)
