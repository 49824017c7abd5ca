"""Writers: where accepted batches go. ``DirectWriter`` inserts into the store at once."""

from __future__ import annotations

import pyarrow as pa
from fastapi import HTTPException

from keelwatch.store import Store, StoreError

__all__ = ["DirectWriter"]


class DirectWriter:
    """Insert into the store; a store failure is a 503 with ``Retry-After``."""

    def __init__(self, store: Store, retry_after_s: int = 5) -> None:
        self.store = store
        self.retry_after_s = retry_after_s

    def write(self, table: str, data: pa.Table, token: str) -> None:
        try:
            self.store.insert(table, data, token)
        except StoreError as exc:
            raise HTTPException(
                503,
                "store unavailable, retry later",
                headers={"Retry-After": str(self.retry_after_s)},
            ) from exc

    def close(self) -> None:
        pass
