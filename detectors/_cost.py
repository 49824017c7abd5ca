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

The price tables and how prices are recorded and corrected are in ``_prices``.
"""

from __future__ import annotations

from dataclasses import dataclass

from keelwatch.store import Store

from ._sql import WHERE_WINDOW, Window

__all__ = ["Cost", "cost"]


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
