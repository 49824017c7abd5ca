"""Cost detectors: effective-dated compute and token prices applied at query time.

Hand-computed cases for each rule (price periods, the most specific deployment row, corrections,
unpriced predictions, tokens) and a recomputation with ``pandas.merge_asof`` on random data.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keelwatch.detectors import (
    Cost,
    PriceError,
    Window,
    cost,
    list_compute_prices,
    list_token_prices,
    set_compute_price,
    set_token_price,
)
from keelwatch.store import Store

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
WINDOW = Window("m", T0, T0 + timedelta(hours=1))


def add(
    store: Store,
    seconds: Sequence[float],
    latency_ms: Sequence[float],
    version: str | Sequence[str] = "",
    slot: str | Sequence[str] = "",
    prompt: Sequence[int] | None = None,
    completion: Sequence[int] | None = None,
    model: str = "m",
    project: str = "default",
    tags: Sequence[dict[str, str]] | None = None,
) -> None:
    """Predictions at ``T0 + seconds``."""
    n = len(seconds)

    def column(value: str | Sequence[str]) -> list[str]:
        return [value] * n if isinstance(value, str) else list(value)

    store.insert(
        "predictions",
        pa.table(
            {
                "project": [project] * n,
                "model": [model] * n,
                "version": column(version),
                "slot": column(slot),
                "prediction_id": [uuid.uuid4().hex for _ in range(n)],
                "ts": pa.array(
                    [T0 + timedelta(seconds=float(s)) for s in seconds], pa.timestamp("us", "UTC")
                ),
                "latency_ms": pa.array(latency_ms, pa.float64()),
                "prompt_tokens": pa.array(prompt or [0] * n, pa.uint32()),
                "completion_tokens": pa.array(completion or [0] * n, pa.uint32()),
                "tags": pa.array(
                    [list(t.items()) for t in tags or [{}] * n], pa.map_(pa.string(), pa.string())
                ),
            }
        ),
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Untouched:
    """A store that fails the test if anything reaches it (bad input must be refused first)."""

    kind = "embedded"

    def command(self, sql: str, params: Any = None) -> None:
        raise AssertionError(f"store used: {sql}")

    def query(self, sql: str, params: Any = None) -> pa.Table:
        raise AssertionError(f"store used: {sql}")

    def insert(self, table: str, data: pa.Table, dedup_token: str | None = None) -> None:
        raise AssertionError(f"store used: insert into {table}")

    def close(self) -> None:
        pass


def by_deployment(rows: tuple[Cost, ...]) -> dict[tuple[str, str], Cost]:
    return {(r.version, r.slot): r for r in rows}


def test_two_price_periods_split_the_window(store: Store) -> None:
    add(store, [10, 20, 30, 40], [1000, 2000, 500, 1500])
    set_compute_price(store, "m", 0.01, effective_from=at(0))
    set_compute_price(store, "m", 0.02, 0.5, effective_from=at(30))  # 30 s: exactly at a call
    (row,) = cost(store, WINDOW)
    expected = [1 * 0.01, 2 * 0.01, 0.5 * 0.02 + 0.5, 1.5 * 0.02 + 0.5]
    assert row.predictions == row.priced == row.compute_priced == 4 and row.unpriced == 0
    assert row.compute_seconds == pytest.approx(5.0)
    assert row.compute_cost == pytest.approx(sum(expected))
    assert row.compute_cost_mean == pytest.approx(sum(expected) / 4)
    assert row.total_cost == pytest.approx(sum(expected)) and row.token_cost == 0
    assert row.currency == "USD"


def test_most_specific_deployment_row_wins(store: Store) -> None:
    deployments = [("v1", "canary"), ("v1", "stable"), ("v2", "canary"), ("v2", "stable")]
    add(
        store,
        [100, 101, 102, 103],
        [1000] * 4,
        version=[v for v, _ in deployments],
        slot=[s for _, s in deployments],
    )
    add(store, [15], [1000], version="v1", slot="canary")  # before the exact row is effective
    set_compute_price(store, "m", 1.0, effective_from=at(50))  # any: newest, least specific
    set_compute_price(store, "m", 2.0, slot="canary", effective_from=at(10))
    set_compute_price(store, "m", 3.0, version="v1", effective_from=at(5))
    set_compute_price(store, "m", 4.0, version="v1", slot="canary", effective_from=at(20))
    set_compute_price(store, "m", 9.0, version="v1", slot="canary", effective_from=at(200))
    rows = by_deployment(cost(store, WINDOW))
    # v1/canary: the version row at 15 s (it beats the newer slot row), the first exact row at
    # 100 s (the later one is not yet effective); v1/stable: the version row; v2/canary: the slot
    # row; v2/stable: the any row.
    got = {key: rows[key].compute_cost for key in deployments}
    assert got == {
        ("v1", "canary"): 3.0 + 4.0,
        ("v1", "stable"): 3.0,
        ("v2", "canary"): 2.0,
        ("v2", "stable"): 1.0,
    }


def test_a_correction_re_prices_a_past_window(store: Store) -> None:
    add(store, [10, 20], [1000, 1000])
    set_compute_price(store, "m", 1.0, effective_from=at(15))
    before = cost(store, WINDOW)[0]
    assert (before.compute_priced, before.unpriced, before.compute_cost) == (1, 1, 1.0)

    set_compute_price(store, "m", 5.0, effective_from=at(15))  # same key: replaces the row
    set_compute_price(store, "m", 0.5, effective_from=at(0))  # an earlier period, added late
    after = cost(store, WINDOW)[0]
    assert (after.compute_priced, after.unpriced) == (2, 0)
    assert after.compute_cost == pytest.approx(0.5 + 5.0)
    listed = list_compute_prices(store, "m")
    assert [(p.effective_from, p.per_second) for p in listed] == [(at(0), 0.5), (at(15), 5.0)]


def test_unpriced_predictions_are_counted_not_costed(store: Store) -> None:
    add(store, [1, 2, 3, 60], [1000] * 4, version=["v1", "v1", "v9", "v1"])
    set_compute_price(store, "m", 1.0, version="v1", effective_from=at(2))
    rows = by_deployment(cost(store, WINDOW))
    v1, v9 = rows[("v1", "")], rows[("v9", "")]
    assert (v1.predictions, v1.priced, v1.unpriced, v1.compute_cost) == (3, 2, 1, 2.0)
    assert (v9.predictions, v9.priced, v9.unpriced, v9.compute_cost) == (1, 0, 1, 0.0)
    assert v9.compute_cost_mean is None and v9.currency == ""


def test_token_cost(store: Store) -> None:
    add(
        store,
        [5, 10, 20],
        [0, 0, 0],
        prompt=[1000, 2_000_000, 300],
        completion=[500, 1_000_000, 0],
    )
    set_token_price(store, "m", 3.0, 15.0, effective_from=at(0))
    set_token_price(store, "m", 2.5, 10.0, effective_from=at(20))
    (row,) = cost(store, WINDOW)
    expected = (
        (1000 * 3 + 500 * 15) / 1e6 + (2_000_000 * 3 + 1_000_000 * 15) / 1e6 + 300 * 2.5 / 1e6
    )
    assert (row.prompt_tokens, row.completion_tokens) == (2_001_300, 1_000_500)
    assert row.token_priced == row.priced == 3 and row.compute_priced == 0
    assert row.token_cost == pytest.approx(expected)
    assert row.total_cost == pytest.approx(expected)
    assert row.compute_cost_mean is None


def test_window_filters_and_projects_keep_prices_apart(store: Store) -> None:
    add(store, [1, 2], [1000, 1000], version=["v1", "v2"])
    add(store, [1], [1000], project="other")
    set_compute_price(store, "m", 1.0, effective_from=at(0))
    set_compute_price(store, "m", 7.0, effective_from=at(0), project="other")
    only_v2 = Window("m", T0, T0 + timedelta(hours=1), version="v2")
    assert [(c.version, c.compute_cost) for c in cost(store, only_v2)] == [("v2", 1.0)]
    other = Window("m", T0, T0 + timedelta(hours=1), project="other")
    assert [c.compute_cost for c in cost(store, other)] == [7.0]
    assert cost(store, Window("none", T0, T0 + timedelta(hours=1))) == ()
    assert [p.per_second for p in list_compute_prices(store, project="other")] == [7.0]


def test_currency_is_one_per_model(store: Store) -> None:
    set_compute_price(store, "m", 1.0, effective_from=at(0), currency="eur")
    assert list_compute_prices(store)[0].currency == "EUR"
    with pytest.raises(PriceError, match="currency: model 'm' is already priced in EUR"):
        set_token_price(store, "m", 1.0, 1.0, currency="USD")
    # Re-recording the only row in another currency moves the model over.
    set_compute_price(store, "m", 1.0, effective_from=at(0), currency="USD")
    set_token_price(store, "m", 1.0, 2.0, effective_from=at(0), currency="USD")
    assert [p.currency for p in list_token_prices(store, "m")] == ["USD"]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ({"per_second": -0.1}, "per_second"),
        ({"per_second": math.nan}, "per_second"),
        ({"per_second": math.inf}, "per_second"),
        ({"per_second": "1"}, "per_second"),
        ({"per_second": True}, "per_second"),
        ({"per_prediction": -1}, "per_prediction"),
        ({"currency": "dollars"}, "currency"),
        ({"currency": ""}, "currency"),
        ({"effective_from": datetime(1969, 12, 31, tzinfo=timezone.utc)}, "effective_from"),
        ({"effective_from": "2026-01-01"}, "effective_from"),
        ({"model": ""}, "model"),
        ({"version": None}, "version"),
    ],
)
def test_bad_compute_prices_name_the_field(call: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"model": "m", "per_second": 1.0} | call
    with pytest.raises(ValueError, match=f"^{field}: "):
        set_compute_price(Untouched(), **args)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ({"prompt_per_million": math.nan}, "prompt_per_million"),
        ({"completion_per_million": -3}, "completion_per_million"),
        ({"effective_from": datetime(2300, 1, 1)}, "effective_from"),
    ],
)
def test_bad_token_prices_name_the_field(call: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"model": "m", "prompt_per_million": 1, "completion_per_million": 2}
    with pytest.raises(PriceError, match=f"^{field}: "):
        set_token_price(Untouched(), **(args | call))


def test_naive_effective_from_is_utc(store: Store) -> None:
    price = set_token_price(store, "m", 1, 2, effective_from=datetime(2026, 3, 1))
    assert price.effective_from == T0
    assert list_token_prices(store)[0].effective_from == T0


def _oracle(
    calls: pd.DataFrame, compute: pd.DataFrame, tokens: pd.DataFrame
) -> dict[tuple[str, str], dict[str, float]]:
    """The same cost recomputed with ``merge_asof`` (backward: latest ``effective_from <= ts``)."""
    calls = calls.sort_values("ts").reset_index(drop=True)
    calls["ps"] = np.nan
    calls["pp"] = np.nan
    levels = [  # most specific first; the keys each level matches on
        (compute.version.ne("") & compute.slot.ne(""), ["version", "slot"]),
        (compute.version.ne("") & compute.slot.eq(""), ["version"]),
        (compute.version.eq("") & compute.slot.ne(""), ["slot"]),
        (compute.version.eq("") & compute.slot.eq(""), []),
    ]
    for mask, keys in levels:
        rows = compute[mask].sort_values("effective_from")
        if rows.empty:
            continue
        found = pd.merge_asof(
            calls[["ts", *keys]],
            rows[["effective_from", "per_second", "per_prediction", *keys]],
            left_on="ts",
            right_on="effective_from",
            by=keys or None,
            direction="backward",
        )
        take = calls["ps"].isna() & found["per_second"].notna()
        calls.loc[take, "ps"] = found.loc[take, "per_second"]
        calls.loc[take, "pp"] = found.loc[take, "per_prediction"]
    found = pd.merge_asof(
        calls[["ts"]],
        tokens.sort_values("effective_from"),
        left_on="ts",
        right_on="effective_from",
        direction="backward",
    )
    calls["pin"], calls["pout"] = found["prompt_per_million"], found["completion_per_million"]
    calls["compute"] = calls.latency_ms / 1000 * calls.ps + calls.pp
    calls["token"] = calls.prompt * calls.pin / 1e6 + calls.completion * calls.pout / 1e6
    out = {}
    for (version, slot), g in calls.groupby(["version", "slot"]):
        out[(str(version), str(slot))] = {
            "predictions": len(g),
            "compute_priced": int(g.ps.notna().sum()),
            "token_priced": int(g.pin.notna().sum()),
            "priced": int((g.ps.notna() | g.pin.notna()).sum()),
            "compute_cost": float(g.compute.sum()),
            "token_cost": float(g.token.sum()),
            "compute_seconds": float(g.latency_ms.sum() / 1000),
            "prompt_tokens": int(g.prompt.sum()),
        }
    return out


def test_matches_a_merge_asof_recomputation(store: Store, rng: np.random.Generator) -> None:
    n = 3000
    versions, slots = np.array(["v1", "v2", "v3"]), np.array(["stable", "canary"])
    calls = pd.DataFrame(
        {
            "seconds": np.sort(rng.uniform(0, 3600, n)),
            "version": rng.choice(versions, n),
            "slot": rng.choice(slots, n),
            "latency_ms": rng.gamma(2.0, 40.0, n),
            "prompt": rng.integers(0, 4000, n),
            "completion": rng.integers(0, 800, n),
        }
    )
    calls["ts"] = [at(s) for s in calls.seconds]
    add(
        store,
        calls.seconds.tolist(),
        calls.latency_ms.tolist(),
        calls.version.tolist(),
        calls.slot.tolist(),
        calls.prompt.tolist(),
        calls.completion.tolist(),
    )
    combos = [(v, s) for v in ("", "v1", "v2") for s in ("", "canary")]
    for i in range(14):  # every level, some twice or more at different times
        version, slot = combos[i % len(combos)]
        set_compute_price(
            store,
            "m",
            float(rng.uniform(0, 0.01)),
            float(rng.uniform(0, 0.001)),
            version=version,
            slot=slot,
            effective_from=at(float(rng.uniform(0, 3600))),
        )
    for seconds in (600.0, 1800.0, 2400.0):  # the first 10 minutes have no token price
        set_token_price(
            store,
            "m",
            float(rng.uniform(0, 5)),
            float(rng.uniform(0, 20)),
            effective_from=at(seconds),
        )
    # What is stored (repeated keys replaced) is what the oracle prices with.
    compute = pd.DataFrame([p.__dict__ for p in list_compute_prices(store, "m")])
    tokens = pd.DataFrame([p.__dict__ for p in list_token_prices(store, "m")])
    expected = _oracle(calls, compute, tokens)
    got = by_deployment(cost(store, WINDOW))
    assert set(got) == set(expected)
    for key, want in expected.items():
        row = got[key]
        assert row.predictions == want["predictions"]
        assert row.priced == want["priced"]
        assert row.unpriced == want["predictions"] - want["priced"]
        assert row.compute_priced == want["compute_priced"]
        assert row.token_priced == want["token_priced"]
        assert row.prompt_tokens == want["prompt_tokens"]
        assert row.compute_seconds == pytest.approx(want["compute_seconds"], rel=1e-12)
        assert row.compute_cost == pytest.approx(want["compute_cost"], rel=1e-9)
        assert row.token_cost == pytest.approx(want["token_cost"], rel=1e-9)
        assert row.total_cost == pytest.approx(want["compute_cost"] + want["token_cost"])
    # The data exercises every rule: all four levels, unpriced calls, a period without tokens.
    levels = set(zip(compute.version.ne(""), compute.slot.ne(""), strict=True))
    assert len(levels) == 4
    assert sum(r.unpriced for r in got.values()) > 0
    assert sum(r.compute_priced for r in got.values()) > n // 2
    assert 0 < sum(r.token_priced for r in got.values()) < n


def test_a_segment_window_prices_only_its_predictions(store: Store) -> None:
    add(store, [1, 2], [1000, 3000], tags=[{"region": "us"}, {"region": "eu"}])
    set_compute_price(store, "m", 1.0, effective_from=at(0))
    eu = Window("m", T0, T0 + timedelta(hours=1), segment=(("region", "eu"),))
    assert [(c.predictions, c.compute_cost) for c in cost(store, eu)] == [(1, 3.0)]
