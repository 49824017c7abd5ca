"""What a model's predictions cost: compute time and LLM tokens, priced at query time.

Prices live in two effective-dated tables (store migration 9) and are never applied at ingest, so
recording or correcting a price re-prices every window that is queried afterwards::

    compute cost of a prediction = latency_ms / 1000 × per_second + per_prediction
    token cost of a prediction   = prompt_tokens × prompt_per_million / 1e6
                                 + completion_tokens × completion_per_million / 1e6

A prediction takes, from ``compute_prices``, the most specific row of its deployment (version and
slot both matching, then version only, then slot only, then neither; ``''`` means "any"), and
within that level the latest ``effective_from <= ts``; from ``token_prices`` the latest row with
``effective_from <= ts``. One query does it: the window's predictions are first summed per
deployment and price period (between two consecutive ``effective_from`` values of the model no
price changes, and cost is linear in latency and tokens), then each period is priced with
``ASOF LEFT JOIN``s and summed per (version, slot); only those rows reach Python.

A correction is a row with the same key (project, model, version, slot, effective_from): the
tables are ``ReplacingMergeTree(recorded_at)`` and every read uses ``FINAL``, so the newest
recording of a key is the price. Bad prices, currencies and dates raise :class:`PriceError` (a
``ValueError``) naming the field.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from keelwatch.store import Store

from ._sql import WHERE_WINDOW, Window

__all__ = [
    "ComputePrice",
    "Cost",
    "PriceError",
    "TokenPrice",
    "cost",
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


@dataclass(frozen=True)
class Cost:
    """The cost of one (version, slot) of a model over a window.

    ``priced`` predictions had a compute or a token price effective (``unpriced`` had neither);
    ``compute_cost_mean`` is over the ``compute_priced`` ones (``None`` if there are none).
    Token counts cover every prediction, ``token_cost`` the ``token_priced`` ones.
    ``currency`` is the prices' currency, ``''`` when nothing was priced, and several codes
    joined by ``,`` if the prices mixed currencies (then the sums are not meaningful).
    """

    version: str
    slot: str
    currency: str
    predictions: int
    priced: int
    unpriced: int
    compute_priced: int
    compute_seconds: float
    compute_cost: float
    compute_cost_mean: float | None
    prompt_tokens: int
    completion_tokens: int
    token_priced: int
    token_cost: float
    total_cost: float


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


def _level(alias: str, where: str) -> str:
    """One specificity level of ``compute_prices`` for the ASOF join (``hit`` marks a match)."""
    return (
        "(SELECT model, version, slot, effective_from, per_second, per_prediction, currency, "
        "toUInt8(1) AS hit FROM compute_prices FINAL "
        f"WHERE project = {{p:String}} AND model = {{m:String}} AND {where}) AS {alias}"
    )


# Levels from most to least specific, with the equality keys each ASOF join matches on; each
# join picks its level's latest row with effective_from <= ts.
_LEVELS = {
    "c3": ("version != '' AND slot != ''", "w.version = c3.version AND w.slot = c3.slot"),
    "c2": ("version != '' AND slot = ''", "w.version = c2.version"),
    "c1": ("version = '' AND slot != ''", "w.slot = c1.slot"),
    "c0": ("version = '' AND slot = ''", "w.model = c0.model"),
}


def _pick(column: str) -> str:
    branches = ", ".join(f"{alias}.hit = 1, {alias}.{column}" for alias in _LEVELS)
    return f"multiIf({branches}, NULL)"


# Every effective_from of the model's prices, sorted: between two of them no price changes.
_BOUNDS = (
    "(SELECT arraySort(groupUniqArray(effective_from)) FROM ("
    "SELECT effective_from FROM compute_prices FINAL "
    "WHERE project = {p:String} AND model = {m:String} UNION ALL "
    "SELECT effective_from FROM token_prices FINAL "
    "WHERE project = {p:String} AND model = {m:String}))"
)

# The window's predictions summed per deployment and price period first (cost is linear in
# latency and tokens, and one period has one price per level), so the ASOF joins see a few rows
# per period instead of every prediction: five joins over 1M rows took 1.8 s, this takes
# about as long as a plain GROUP BY (docs/cost.md).
_PERIODS = (
    f"SELECT model, version, slot, arrayCount(b -> b <= ts, {_BOUNDS}) AS period, "
    "min(ts) AS first_ts, count() AS calls, sum(latency_ms) AS latency_sum, "
    "sum(toUInt64(prompt_tokens)) AS prompt_sum, "
    "sum(toUInt64(completion_tokens)) AS completion_sum "
    f"FROM predictions WHERE {WHERE_WINDOW} GROUP BY model, version, slot, period"
)

# One row per (deployment, period) with the prices in force (NULL: none).
_PRICED = (
    "SELECT w.version AS version, w.slot AS slot, w.calls AS calls, "
    "w.latency_sum AS latency_sum, w.prompt_sum AS prompt_sum, "
    "w.completion_sum AS completion_sum, "
    f"{_pick('per_second')} AS ps, {_pick('per_prediction')} AS pp, "
    f"{_pick('currency')} AS cur_c, "
    "if(t.hit = 1, t.prompt_per_million, NULL) AS pin, "
    "if(t.hit = 1, t.completion_per_million, NULL) AS pout, "
    "if(t.hit = 1, t.currency, NULL) AS cur_t "
    f"FROM ({_PERIODS}) AS w "
    + "".join(
        f"ASOF LEFT JOIN {_level(alias, where)} ON {on} AND w.first_ts >= {alias}.effective_from "
        for alias, (where, on) in _LEVELS.items()
    )
    + "ASOF LEFT JOIN (SELECT model, effective_from, prompt_per_million, "
    "completion_per_million, currency, toUInt8(1) AS hit FROM token_prices FINAL "
    "WHERE project = {p:String} AND model = {m:String}) AS t "
    "ON w.model = t.model AND w.first_ts >= t.effective_from"
)

_COST = (
    "SELECT version, slot, sum(calls) AS n, "
    "sumIf(calls, ps IS NOT NULL OR pin IS NOT NULL) AS priced, "
    "sumIf(calls, ps IS NOT NULL) AS compute_priced, "
    "sum(latency_sum) / 1000 AS compute_seconds, "
    "sumIf(latency_sum / 1000 * ps + calls * pp, ps IS NOT NULL) AS compute_cost, "
    "sum(prompt_sum) AS prompt_tokens, sum(completion_sum) AS completion_tokens, "
    "sumIf(calls, pin IS NOT NULL) AS token_priced, "
    "sumIf(prompt_sum * pin / 1e6 + completion_sum * pout / 1e6, pin IS NOT NULL) "
    "AS token_cost, "
    "arraySort(arrayDistinct(arrayConcat(groupUniqArray(cur_c), groupUniqArray(cur_t)))) "
    "AS currencies "
    f"FROM ({_PRICED}) GROUP BY version, slot ORDER BY version, slot "
    # Unmatched ASOF rows must read as "no price" (hit = 0), whatever the server's profile says.
    "SETTINGS join_use_nulls = 0"
)


def cost(store: Store, window: Window) -> tuple[Cost, ...]:
    """One row per (version, slot) seen in ``window``: its predictions priced at query time."""
    rows = store.query(_COST, window.params()).to_pylist()
    out = []
    for r in rows:
        compute_priced = int(r["compute_priced"])
        compute_cost = float(r["compute_cost"] or 0.0)
        token_cost = float(r["token_cost"] or 0.0)
        out.append(
            Cost(
                version=str(r["version"]),
                slot=str(r["slot"]),
                currency=",".join(str(c) for c in r["currencies"]),
                predictions=int(r["n"]),
                priced=int(r["priced"]),
                unpriced=int(r["n"]) - int(r["priced"]),
                compute_priced=compute_priced,
                compute_seconds=float(r["compute_seconds"]),
                compute_cost=compute_cost,
                compute_cost_mean=compute_cost / compute_priced if compute_priced else None,
                prompt_tokens=int(r["prompt_tokens"]),
                completion_tokens=int(r["completion_tokens"]),
                token_priced=int(r["token_priced"]),
                token_cost=token_cost,
                total_cost=compute_cost + token_cost,
            )
        )
    return tuple(out)
