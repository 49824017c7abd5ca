"""Effective-dated compute and LLM token prices (store migration 9), recorded and listed.

Prices are never applied at ingest; ``_cost`` prices a window at query time, so recording or
correcting a price re-prices every window queried afterwards. A correction is a row with the same
key (project, model, version, slot, effective_from): the tables are
``ReplacingMergeTree(recorded_at)`` and every read uses ``FINAL``, so the newest recording of a
key is the price. Bad prices, currencies and dates raise :class:`PriceError` (a ``ValueError``)
naming the field.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from keelwatch.store import Store

__all__ = [
    "ComputePrice",
    "PriceError",
    "TokenPrice",
    "list_compute_prices",
    "list_token_prices",
    "set_compute_price",
    "set_token_price",
]

_CURRENCY = re.compile(r"^[A-Z]{3}$")
# DateTime64(6) holds 1900..2299; prices before the UNIX epoch or centuries ahead are typos.
_EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


class PriceError(ValueError):
    """A price, currency, model name or date is not acceptable; the message names the field."""


@dataclass(frozen=True)
class ComputePrice:
    """A price per second of a deployment's latency, and per prediction, from a time on."""

    model: str
    version: str  # '' = any version
    slot: str  # '' = any slot
    effective_from: datetime
    per_second: float
    per_prediction: float
    currency: str
    recorded_by: str
    recorded_at: datetime
    project: str = "default"


@dataclass(frozen=True)
class TokenPrice:
    """A model's price per million prompt and completion tokens, from a time on."""

    model: str
    effective_from: datetime
    prompt_per_million: float
    completion_per_million: float
    currency: str
    recorded_by: str
    recorded_at: datetime
    project: str = "default"


def _name(value: Any, field: str, *, required: bool) -> str:
    if not isinstance(value, str):
        raise PriceError(f"{field}: must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise PriceError(f"{field}: is required")
    return value


def _price(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PriceError(f"{field}: must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise PriceError(f"{field}: must be a finite number >= 0, got {value!r}")
    return number


def _currency(value: Any) -> str:
    code = value.strip().upper() if isinstance(value, str) else value
    if not isinstance(code, str) or not _CURRENCY.match(code):
        raise PriceError(
            f"currency: must be a three-letter ISO 4217 code such as USD, got {value!r}"
        )
    return code


def _when(value: datetime | None, now: datetime) -> datetime:
    """``effective_from`` as an aware UTC time (naive means UTC, as everywhere in keelwatch)."""
    if value is None:
        return now
    if not isinstance(value, datetime):
        raise PriceError(f"effective_from: must be a datetime, got {value!r}")
    when = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not _EARLIEST <= when < _LATEST:
        raise PriceError(
            f"effective_from: must be from 1970-01-01 to 2199-12-31 UTC, got {when.isoformat()}"
        )
    return when.astimezone(timezone.utc)


def _check_currency(store: Store, price: ComputePrice | TokenPrice, table: str) -> None:
    """Refuse a currency other than the one the model's other prices use (sums would mix).

    The row being replaced (same key in the same table) does not count, so a model priced in
    one currency can be moved to another by re-recording each of its rows.
    """
    rows = store.query(
        "SELECT DISTINCT currency FROM ("
        "SELECT 'compute' AS t, version, slot, effective_from, currency FROM compute_prices FINAL "
        "WHERE project = {p:String} AND model = {m:String} UNION ALL "
        "SELECT 'tokens' AS t, '' AS version, '' AS slot, effective_from, currency "
        "FROM token_prices FINAL WHERE project = {p:String} AND model = {m:String}"
        ") WHERE currency != {c:String} AND NOT (t = {t:String} AND version = {v:String} "
        "AND slot = {s:String} AND effective_from = {f:DateTime64(6, 'UTC')})",
        {
            "p": price.project,
            "m": price.model,
            "c": price.currency,
            "t": table,
            "v": getattr(price, "version", ""),
            "s": getattr(price, "slot", ""),
            "f": price.effective_from,
        },
    ).to_pylist()
    if rows:
        others = ", ".join(sorted(str(r["currency"]) for r in rows))
        raise PriceError(
            f"currency: model {price.model!r} is already priced in {others}; record all its "
            f"prices in one currency (got {price.currency})"
        )


def _insert(store: Store, table: str, price: ComputePrice | TokenPrice) -> None:
    """One price row; the dataclass fields are the table's columns."""
    columns = {
        name: pa.array([value], pa.timestamp("us", "UTC"))
        if isinstance(value, datetime)
        else [value]
        for name, value in asdict(price).items()
    }
    store.insert(table, pa.table(columns))


def set_compute_price(
    store: Store,
    model: str,
    per_second: float,
    per_prediction: float = 0.0,
    *,
    version: str = "",
    slot: str = "",
    effective_from: datetime | None = None,
    currency: str = "USD",
    project: str = "default",
    recorded_by: str = "",
    now: datetime | None = None,
) -> ComputePrice:
    """Record the compute price of a deployment from ``effective_from`` on (default: now).

    ``version``/``slot`` ``''`` price any version or slot; a row with the same model, version,
    slot and ``effective_from`` is replaced (a correction).
    """
    recorded_at = now or datetime.now(timezone.utc)
    price = ComputePrice(
        model=_name(model, "model", required=True),
        version=_name(version, "version", required=False),
        slot=_name(slot, "slot", required=False),
        effective_from=_when(effective_from, recorded_at),
        per_second=_price(per_second, "per_second"),
        per_prediction=_price(per_prediction, "per_prediction"),
        currency=_currency(currency),
        recorded_by=_name(recorded_by, "recorded_by", required=False),
        recorded_at=recorded_at,
        project=_name(project, "project", required=True),
    )
    _check_currency(store, price, "compute")
    _insert(store, "compute_prices", price)
    return price


def set_token_price(
    store: Store,
    model: str,
    prompt_per_million: float,
    completion_per_million: float,
    *,
    effective_from: datetime | None = None,
    currency: str = "USD",
    project: str = "default",
    recorded_by: str = "",
    now: datetime | None = None,
) -> TokenPrice:
    """Record an LLM's token prices from ``effective_from`` on (default: now).

    A row with the same model and ``effective_from`` is replaced (a correction).
    """
    recorded_at = now or datetime.now(timezone.utc)
    price = TokenPrice(
        model=_name(model, "model", required=True),
        effective_from=_when(effective_from, recorded_at),
        prompt_per_million=_price(prompt_per_million, "prompt_per_million"),
        completion_per_million=_price(completion_per_million, "completion_per_million"),
        currency=_currency(currency),
        recorded_by=_name(recorded_by, "recorded_by", required=False),
        recorded_at=recorded_at,
        project=_name(project, "project", required=True),
    )
    _check_currency(store, price, "tokens")
    _insert(store, "token_prices", price)
    return price


def _utc(value: Any) -> Any:
    if not isinstance(value, datetime):
        return value
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _columns(kind: type[ComputePrice | TokenPrice]) -> str:
    """The dataclass's fields, which are its table's columns (a constant list, not user input)."""
    return ", ".join(f.name for f in fields(kind))


def list_compute_prices(
    store: Store, model: str | None = None, project: str = "default"
) -> tuple[ComputePrice, ...]:
    """The current compute prices (corrections applied), by model, version, slot and time."""
    rows = store.query(
        f"SELECT {_columns(ComputePrice)} FROM compute_prices FINAL WHERE project = {{p:String}} "
        "AND ({m:String} = '' OR model = {m:String}) "
        "ORDER BY model, version, slot, effective_from",
        {"p": project, "m": model or ""},
    ).to_pylist()
    return tuple(ComputePrice(**{k: _utc(v) for k, v in r.items()}) for r in rows)


def list_token_prices(
    store: Store, model: str | None = None, project: str = "default"
) -> tuple[TokenPrice, ...]:
    """The current token prices (corrections applied), by model and time."""
    rows = store.query(
        f"SELECT {_columns(TokenPrice)} FROM token_prices FINAL WHERE project = {{p:String}} "
        "AND ({m:String} = '' OR model = {m:String}) ORDER BY model, effective_from",
        {"p": project, "m": model or ""},
    ).to_pylist()
    return tuple(TokenPrice(**{k: _utc(v) for k, v in r.items()}) for r in rows)
