"""Writers: where accepted batches go.

``DirectWriter`` inserts at once and answers 503 when the store fails (the request is
acknowledged after the insert). ``SpoolingWriter`` (``_write_behind``) writes behind: a batch is
appended to the on-disk spool (fsync'd), the request acknowledged, and one inserter thread
inserts everything spooled meanwhile as one insert.
"""

from __future__ import annotations

import pyarrow as pa
from fastapi import HTTPException

from keelwatch.store import Store, StoreError

__all__ = ["DirectWriter", "unavailable"]


def unavailable(retry_after_s: int, message: str) -> HTTPException:
    """A 503 with ``Retry-After``: the store (or the spool in front of it) cannot take more."""
    return HTTPException(503, message, headers={"Retry-After": str(retry_after_s)})


class DirectWriter:
    """Insert into the store; a store failure is a 503 with ``Retry-After``."""

    def __init__(self, store: Store, retry_after_s: int = 5) -> None:
        self.store = store
        self.retry_after_s = retry_after_s

    def write(self, table: str, data: pa.Table, token: str) -> None:
        try:
            self.store.insert(table, data, token)
        except StoreError as exc:
            raise unavailable(self.retry_after_s, "store unavailable, retry later") from exc

    def close(self) -> None:
        pass
