"""Baselines registered from a parquet/CSV path inside the engine, against the pandas path."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import keelwatch.detectors._baseline as baseline_module
import keelwatch.detectors._baseline_file as file_module
from keelwatch.detectors import (
    Baseline,
    BaselineError,
    DriftConfig,
    load_frame,
    register_baseline,
    run_drift,
)
from keelwatch.detectors._baseline_file import sql_file
from keelwatch.store import Store, StoreError

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
NUMERIC_METHODS = ("wasserstein", "ks", "psi", "jensen_shannon", "hellinger")


def _frame(rng: np.random.Generator, n: int = 400) -> pd.DataFrame:
    x = rng.normal(2.0, 3.0, n)
    x[[3, 17, 40]] = [np.nan, np.inf, -np.inf]
    nullable_int = rng.integers(-5, 50, n).astype(float)
    nullable_int[rng.random(n) < 0.1] = np.nan
    flags = rng.random(n) < 0.4
    nullable_flags = np.where(rng.random(n) < 0.15, None, rng.random(n) < 0.6).astype(object)
    text = rng.choice(["red", "green", "light blue", "o'neil"], n).astype(object)
    text[rng.random(n) < 0.1] = None
    return pd.DataFrame(
        {
            "x": x,
            "count": rng.integers(0, 1000, n),
            "maybe int": nullable_int,
            "flag": flags,
            "maybe_flag": nullable_flags,
            "colour `name`": text,
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False, row_group_size=64)  # several row groups
    return path


def _read(path: Path) -> pd.DataFrame:
    # The engine parses CSV numbers correctly rounded, as pandas' round-trip parser does
    # (its default parser can be one unit in the last place off).
    if path.suffix == ".csv":
        return pd.read_csv(path, float_precision="round_trip")
    return pd.read_parquet(path)


@pytest.fixture
def no_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if a registration reads its file into pandas."""

    def refuse(source: Any) -> Any:
        if not isinstance(source, pd.DataFrame):
            raise AssertionError(f"pandas read {source}")
        return load_frame(source)

    monkeypatch.setattr(baseline_module, "load_frame", refuse)


def _contents(store: Store, baseline: Baseline) -> dict[str, list[dict[str, Any]]]:
    params = {"b": baseline.baseline_id}
    where = "WHERE baseline_id = {b:String} ORDER BY ALL"
    return {
        "values": store.query(
            f"SELECT feature, row, value FROM baseline_values {where}", params
        ).to_pylist(),
        "sorted": store.query(
            f"SELECT feature, sorted_values FROM baseline_sorted {where}", params
        ).to_pylist(),
        "rows": store.query(
            f"SELECT row, mapKeys(cat) AS k, mapValues(cat) AS v, num FROM baseline_rows {where}",
            params,
        ).to_pylist(),
    }


def _assert_same_profiles(a: Baseline, b: Baseline) -> None:
    assert a.row_count == b.row_count
    assert [(f.name, f.kind) for f in a.features] == [(f.name, f.kind) for f in b.features]
    for fa, fb in zip(a.features, b.features, strict=True):
        assert (fa.count, fa.nulls, fa.min, fa.max, fa.distinct) == (
            fb.count,
            fb.nulls,
            fb.min,
            fb.max,
            fb.distinct,
        )
        if fa.kind == "numeric" and fa.count:
            assert fa.mean == pytest.approx(fb.mean, rel=1e-12, abs=1e-12)
            assert fa.std == pytest.approx(fb.std, rel=1e-12, abs=1e-12)
        assert fa.quantiles == fb.quantiles
        assert fa.edges == fb.edges
        assert fa.counts == fb.counts
        assert fa.categories == fb.categories


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_file_and_frame_registrations_match(
    store: Store,
    tmp_path: Path,
    rng: np.random.Generator,
    suffix: str,
    no_pandas: None,
) -> None:
    frame = _frame(rng)
    path = _write(frame, tmp_path / f"reference{suffix}")
    from_frame = register_baseline(store, "m", _read(path))
    from_file = register_baseline(store, "m", path)
    _assert_same_profiles(from_file, from_frame)
    assert _contents(store, from_file) == _contents(store, from_frame)
    assert from_file.source == str(path)
    assert from_file.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert from_frame.content_hash != from_file.content_hash  # documented: hashes differ
    assert [f.kind for f in from_file.features] == ["numeric"] * 3 + ["categorical"] * 3


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_file_profile_against_numpy(
    store: Store, tmp_path: Path, rng: np.random.Generator, suffix: str
) -> None:
    frame = _frame(rng)
    path = _write(frame, tmp_path / f"reference{suffix}")
    baseline = register_baseline(store, "m", path)
    for name in ("x", "count", "maybe int"):
        values = frame[name].to_numpy(dtype=float)
        finite = np.sort(values[np.isfinite(values)])
        profile = baseline.feature(name)
        assert (profile.count, profile.nulls) == (finite.size, len(frame) - finite.size)
        assert (profile.min, profile.max) == (finite[0], finite[-1])
        assert profile.mean == pytest.approx(np.mean(finite), rel=1e-12)
        assert profile.std == pytest.approx(np.std(finite), rel=1e-12)
        # quantilesExact's element: 0-based index floor(level * n) of the sorted values.
        assert profile.quantiles == tuple(finite[int(q * finite.size)] for q in QUANTILES)
        edges = np.histogram_bin_edges(finite, "sturges")
        np.testing.assert_allclose(profile.edges, edges, rtol=1e-12)
        assert list(profile.counts) == np.histogram(finite, edges)[0].tolist()
        # Each stored value sits at its record's position in the file.
        rows = store.query(
            "SELECT row, value FROM baseline_values WHERE baseline_id = {b:String} "
            "AND feature = {f:String} ORDER BY row",
            {"b": baseline.baseline_id, "f": name},
        ).to_pylist()
        positions = np.flatnonzero(np.isfinite(values))
        assert [r["row"] for r in rows] == positions.tolist()
        assert [r["value"] for r in rows] == values[positions].tolist()
    flags = baseline.feature("maybe_flag")
    expected = frame["maybe_flag"].dropna().map({True: "true", False: "false"}).value_counts()
    assert flags.categories == expected.to_dict()
    assert flags.nulls == frame["maybe_flag"].isna().sum()
    colours = baseline.feature("colour `name`")
    assert colours.categories == frame["colour `name`"].value_counts().to_dict()


def test_drift_scores_match(
    store: Store, tmp_path: Path, rng: np.random.Generator, insert: Any
) -> None:
    frame = _frame(rng)
    path = _write(frame, tmp_path / "reference.parquet")
    from_file = register_baseline(store, "m", path)
    from_frame = register_baseline(store, "m", frame)
    current = _frame(rng, 300)
    current["x"] = current["x"] + 1.0
    current["flag"] = current["flag"].map({True: "true", False: "false"})
    current["maybe_flag"] = current["maybe_flag"].map({True: "true", False: "false"})
    window = insert(store, "m", current)
    config = DriftConfig(numeric_methods=NUMERIC_METHODS, categorical_methods=("jensen_shannon",))
    runs = [run_drift(store, b, window, config) for b in (from_file, from_frame)]
    scores = [{(r.feature, r.method): (r.score, r.p_value) for r in run.results} for run in runs]
    assert scores[0].keys() == scores[1].keys()
    # Equal up to the summation order of the engine's parallel aggregation (the profile's std).
    for key, (score, p_value) in scores[0].items():
        other_score, other_p = scores[1][key]
        assert score == pytest.approx(other_score, rel=1e-12, abs=1e-15), key
        assert (p_value is None) == (other_p is None), key
        if p_value is not None:
            assert p_value == pytest.approx(other_p, rel=1e-12, abs=1e-15), key
    assert len(scores[0]) == 3 * len(NUMERIC_METHODS) + 3


def test_csv_reads_as_pandas_does(store: Store, tmp_path: Path, no_pandas: None) -> None:
    path = tmp_path / "reference.csv"
    path.write_text(
        "num,na_num,flag,caps_flag,text,spaced,mixed\n"
        '1e3,NA,true,True,"a, b", x,1\n'
        '2.5,null,false,FALSE,"line\nbreak",y ,True\n'
        "-inf,3,,,,,x\n"
        "nan,None,true,TRUE,N/A,z,\n"
        "+4, 5 ,false,False,'q',w,2\n"
    )
    from_file = register_baseline(store, "m", path)
    # register_baseline's own pandas reader is refused here; pandas reads the same file directly.
    from_frame = register_baseline(store, "m", pd.read_csv(path, float_precision="round_trip"))
    _assert_same_profiles(from_file, from_frame)
    assert _contents(store, from_file) == _contents(store, from_frame)
    kinds = {f.name: f.kind for f in from_file.features}
    assert kinds == {
        "num": "numeric",
        "na_num": "numeric",
        "flag": "categorical",
        "caps_flag": "categorical",
        "text": "categorical",
        "spaced": "categorical",
        "mixed": "categorical",
    }
    assert from_file.feature("num").count == 3  # 1000, 2.5, 4; -inf and nan dropped
    assert from_file.feature("caps_flag").categories == {"true": 2, "false": 2}
    assert from_file.feature("spaced").categories == {" x": 1, "y ": 1, "z": 1, "w": 1}
    assert from_file.feature("text").categories == {"a, b": 1, "line\nbreak": 1, "'q'": 1}
    assert from_file.feature("mixed").categories == {"1": 1, "True": 1, "x": 1, "2": 1}


def test_frame_booleans_with_nulls_are_lower_case(store: Store) -> None:
    frame = pd.DataFrame(
        {
            "obj": pd.array([True, None, False, True], dtype=object),
            "nullable": pd.array([True, None, False, True], dtype="boolean"),
        }
    )
    baseline = register_baseline(store, "m", frame)
    for name in ("obj", "nullable"):
        assert baseline.feature(name).categories == {"true": 2, "false": 1}
        assert baseline.feature(name).nulls == 1


def test_parquet_index_and_odd_names(store: Store, tmp_path: Path, no_pandas: None) -> None:
    frame = pd.DataFrame(
        {"it's": [1.0, 2.0, 3.0], 'say "hi"': ["a", "b", "a"], "back\\slash": [4, 5, 6]},
        index=pd.Index([10, 20, 30], name="id"),
    )
    path = tmp_path / "reference.pq"
    frame.to_parquet(path)  # with the index, as a column pandas restores
    baseline = register_baseline(store, "m", path)
    assert [f.name for f in baseline.features] == ["it's", "back\\slash", 'say "hi"']
    assert baseline.feature("it's").mean == pytest.approx(2.0)
    assert baseline.feature('say "hi"').categories == {"a": 2, "b": 1}


def test_other_column_types_and_glob_paths_use_pandas(
    store: Store, tmp_path: Path, rng: np.random.Generator
) -> None:
    frame = pd.DataFrame(
        {"x": rng.normal(size=50), "day": pd.date_range("2026-01-01", periods=50, freq="D")}
    )
    dated = _write(frame, tmp_path / "dated.parquet")
    baseline = register_baseline(store, "m", dated)
    assert {f.name: f.kind for f in baseline.features} == {"x": "numeric", "day": "categorical"}
    assert len(baseline.feature("day").categories) == 50
    assert baseline.content_hash == hashlib.sha256(dated.read_bytes()).hexdigest()
    globbed = _write(frame[["x"]], tmp_path / "ref*{1,2}?.parquet")
    assert sql_file(store, globbed) is None
    baseline = register_baseline(store, "m", globbed)
    assert baseline.feature("x").count == 50
    assert baseline.content_hash == hashlib.sha256(globbed.read_bytes()).hexdigest()


def test_only_the_embedded_store_reads_files(store: Store, tmp_path: Path) -> None:
    path = _write(pd.DataFrame({"x": [1.0]}), tmp_path / "reference.parquet")

    class Remote:
        kind = "clickhouse"

    assert sql_file(Remote(), path) is None  # type: ignore[arg-type]
    assert sql_file(store, path) == (path.resolve(), "Parquet")
    assert sql_file(store, pd.DataFrame({"x": [1.0]})) is None


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("empty.parquet", b"", "the file is empty"),
        ("header.csv", b"a,b\n", "has no rows"),
        ("corrupt.parquet", b"PAR1 this is not parquet at all PAR1", "cannot read"),
        ("unnamed.csv", b"a,,c\n1,2,3\n", "column 2 has no name"),
        ("twice.csv", b"a,b,a\n1,2,3\n", "'a' appears more than once"),
    ],
)
def test_bad_files(
    store: Store, tmp_path: Path, name: str, content: bytes, problem: str, no_pandas: None
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BaselineError, match=problem) as info:
        register_baseline(store, "m", path)
    assert str(path) in str(info.value)
    for table in ("baseline_values", "baseline_sorted", "baseline_rows", "baselines"):
        assert store.query(f"SELECT count() AS n FROM {table}").to_pylist() == [{"n": 0}]


def test_csv_the_engine_cannot_read_goes_to_pandas(store: Store, tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(BaselineError, match=r"cannot read baseline file .*ragged\.csv"):
        register_baseline(store, "m", ragged)
    blank_inside = tmp_path / "blank.csv"
    blank_inside.write_text("a,b\n1,x\n\n3,y\n")  # pandas skips the blank line
    baseline = register_baseline(store, "m", blank_inside)
    assert (baseline.row_count, baseline.feature("a").count) == (2, 2)


def test_csv_trailing_blank_lines(store: Store, tmp_path: Path, no_pandas: None) -> None:
    path = tmp_path / "reference.csv"
    path.write_text("a,b\n1,x\n3,y\n\n\n")
    baseline = register_baseline(store, "m", path)
    assert (baseline.row_count, baseline.feature("a").count) == (2, 2)
    assert baseline.feature("b").categories == {"x": 1, "y": 1}


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_failed_copy_leaves_nothing(
    store: Store,
    tmp_path: Path,
    rng: np.random.Generator,
    suffix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _write(_frame(rng), tmp_path / f"reference{suffix}")

    def fail(*args: Any) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(file_module, "_insert_rows", fail)  # after the numeric features
    with pytest.raises(BaselineError, match="disk full"):
        register_baseline(store, "m", path)
    for table in ("baseline_values", "baseline_sorted", "baseline_rows", "baselines"):
        assert store.query(f"SELECT count() AS n FROM {table}").to_pylist() == [{"n": 0}]
    tables = store.query("SELECT name FROM system.tables WHERE name LIKE 'baseline_stage%'")
    assert tables.num_rows == 0
