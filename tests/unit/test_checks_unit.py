"""Profiles read chunk by chunk, and the drift statistics they feed (PSI, KS)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from mlbuild.checks import inspect_outs
from mlbuild.checks.profile import (
    EPSILON,
    categorical_shares,
    equal_edges,
    ks_statistic,
    numeric_counts,
    psi,
)
from mlbuild.config import parse_checks

# 23 rows: nulls, a duplicate id across a chunk boundary, an int column that turns float
# late, a value out of range, a value not allowed.
CSV = "id,age,score,city,flag\n" + "".join(
    f"{i if i != 21 else 2},{'' if i % 7 == 3 else 20 + i},"
    f"{(i * 1.5) if i < 18 else i},{['oslo', 'rome', 'lima', ''][i % 4]},{i % 2 == 0}\n"
    for i in range(23)
).replace("\n22,42,", "\n22,142,")

CHECKS: list[dict[str, Any]] = [
    {"check": "unique", "columns": ["id"]},
    {"check": "not_null", "columns": ["age", "city"]},
    {"check": "range", "column": "age", "min": 0, "max": 100},
    {"check": "allowed", "column": "city", "values": ["oslo", "rome"]},
    {"check": "rows", "min": 1},
    {"check": "columns", "columns": {"id": "int", "age": "int", "score": "float", "city": "str"}},
]


def _approx(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile with means and stds compared approximately (merged vs one pass)."""
    cols = {}
    for name, col in profile["columns"].items():
        col = dict(col)
        for stat in ("mean", "std"):
            if isinstance(col.get(stat), float):
                col[stat] = pytest.approx(col[stat])
        cols[name] = col
    return {**profile, "columns": cols}


def _inspect(
    root: Path, rel: str, chunk_rows: int, checks: list[dict[str, Any]] = CHECKS
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    specs = parse_checks(checks, [rel])
    results, profiles = inspect_outs(str(root), [rel], specs, {}, chunk_rows=chunk_rows)
    return [r.to_json() for r in results], profiles[rel]


def _write_formats(root: Path) -> list[str]:
    import pandas as pd

    (root / "t.csv").write_text(CSV)
    df = pd.read_csv(root / "t.csv")
    df.to_parquet(root / "t.parquet", index=False)
    df.to_json(root / "t.jsonl", orient="records", lines=True)
    return ["t.csv", "t.parquet", "t.jsonl"]


def _verdicts(results: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What each check found, without the examples (their repr may follow the dtype)."""
    return [
        (r["check"], r.get("column"), r["passed"], r["message"].split(", e.g.")[0]) for r in results
    ]


@pytest.mark.parametrize("chunk_rows", [2, 4, 7])
def test_profile_and_verdicts_from_chunks_equal_one_pass(tmp_path: Path, chunk_rows: int) -> None:
    for rel in _write_formats(tmp_path):
        whole_results, whole = _inspect(tmp_path, rel, 10_000)
        chunk_results, chunked = _inspect(tmp_path, rel, chunk_rows)
        assert chunked == _approx(whole), rel
        assert _verdicts(chunk_results) == _verdicts(whole_results), rel


def test_chunked_profile_of_an_int_column_with_a_chunk_of_only_nulls_matches_one_pass(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.csv").write_text("id,n\n1,1\n2,2\n3,\n4,\n5,3\n6,4\n")
    _, whole = _inspect(tmp_path, "t.csv", 10_000, [])
    _, chunked = _inspect(tmp_path, "t.csv", 2, [])
    assert chunked["columns"]["n"] == _approx(whole)["columns"]["n"]


def test_one_pass_profile_and_verdicts_of_the_sample(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(CSV)
    results, profile = _inspect(tmp_path, "t.csv", 10_000)
    assert profile["rows"] == 23
    age = profile["columns"]["age"]
    assert (age["nulls"], age["count"], age["min"], age["max"]) == (3, 20, 20, 142)
    score = profile["columns"]["score"]
    assert score["dtype"] == "float"
    assert sum(score["histogram"]["counts"]) == 23
    city = profile["columns"]["city"]
    assert (city["dtype"], city["nulls"], city["distinct"]) == ("str", 5, 3)
    failed = {(c, col): msg for c, col, ok, msg in _verdicts(results) if not ok}
    assert failed == {
        ("unique", "id"): "column 'id' has 1 duplicate value(s)",
        ("not_null", "age"): "column 'age' has 3 null value(s)",
        ("not_null", "city"): "column 'city' has 5 null value(s)",
        ("range", "age"): "1 value(s) of 'age' not within [0, 100]",
        ("allowed", "city"): "6 value(s) of 'city' not in ['oslo', 'rome']",
    }
    assert [r["passed"] for r in results if r["check"] in ("rows", "columns")] == [True, True]


def test_chunked_profile_of_a_column_that_turns_to_text_late_counts_every_value(
    tmp_path: Path,
) -> None:
    rows = [f"{i},{1000 + i}" for i in range(10)] + ["10,unknown", "11,2000"]
    (tmp_path / "t.csv").write_text("id,zip\n" + "\n".join(rows) + "\n")
    _, whole = _inspect(tmp_path, "t.csv", 10_000, [])
    _, chunked = _inspect(tmp_path, "t.csv", 3, [])
    assert whole["columns"]["zip"]["distinct"] == 12
    assert chunked["columns"]["zip"] == whole["columns"]["zip"]


def test_unique_sees_duplicates_across_chunks_of_a_column_that_turns_to_text(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.csv").write_text("code\n7\n8\n9\nx7\n7\n")
    checks = [{"check": "unique", "columns": ["code"]}]
    whole, _ = _inspect(tmp_path, "t.csv", 10_000, checks)
    chunked, _ = _inspect(tmp_path, "t.csv", 3, checks)
    assert [r["passed"] for r in whole] == [False]
    assert chunked == whole


def test_empty_tables_keep_their_columns(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b\n")
    checks: list[dict[str, Any]] = [
        {"check": "columns", "columns": ["a", "b"]},
        {"check": "rows", "max": 0},
    ]
    results, profile = _inspect(tmp_path, "t.csv", 5, checks)
    assert [r["passed"] for r in results] == [True, True]
    assert profile["rows"] == 0
    assert sorted(profile["columns"]) == ["a", "b"]


def test_a_column_with_too_many_distinct_values_keeps_no_frequencies(tmp_path: Path) -> None:
    rows = "".join(f"u{i},{i % 3}\n" for i in range(10_001))
    (tmp_path / "t.csv").write_text("user,group\n" + rows)
    _, profile = _inspect(tmp_path, "t.csv", 4_000, [])
    user = profile["columns"]["user"]
    assert (user["count"], user["distinct"], user["top"]) == (10_001, None, [])
    group = profile["columns"]["group"]
    assert (group["dtype"], group["min"], group["max"]) == ("int", 0, 2)


# --------------------------------------------------------------------------- drift


def _profile(root: Path, values: list[float]) -> dict[str, Any]:
    (root / "x.csv").write_text("x\n" + "".join(f"{v}\n" for v in values))
    _, profile = _inspect(root, "x.csv", 10_000, [{"check": "drift", "columns": ["x"]}])
    return profile


def test_drift_bins_new_data_on_the_previous_edges_with_open_outer_bins(tmp_path: Path) -> None:
    before = _profile(tmp_path, list(range(10)))
    hist = before["columns"]["x"]["histogram"]
    assert hist["edges"] == pytest.approx([i * 0.9 for i in range(11)])
    assert hist["counts"] == [1] * 10
    (tmp_path / "x.csv").write_text("x\n" + "".join(f"{v}\n" for v in range(5, 15)))
    checks = parse_checks(
        [{"check": "drift", "columns": ["x"], "max_psi": 0.2, "max_ks": 0.1}], ["x.csv"]
    )
    results, after = inspect_outs(str(tmp_path), ["x.csv"], checks, {"x.csv": before})
    by_stat = {r.message.split(":")[1].split()[0]: r for r in results}
    # 5..8 fall in bins 5..8; 9..14 in the last bin, open to +infinity.
    new = [0, 0, 0, 0, 0, 1, 1, 1, 1, 6]
    want_psi = sum(
        (q - p) * math.log(q / p)
        for p, q in zip([0.1] * 10, [max(c / 10, EPSILON) for c in new], strict=True)
    )
    assert by_stat["PSI"].value == pytest.approx(want_psi)
    assert by_stat["KS"].value == pytest.approx(0.5)
    assert not by_stat["PSI"].passed
    assert not by_stat["KS"].passed
    assert by_stat["PSI"].column == "x"
    assert by_stat["PSI"].message == f"column 'x': PSI {want_psi:.4f} (max 0.2)"
    assert by_stat["KS"].message == "column 'x': KS 0.5000 (max 0.1)"
    # The new profile has its own bins, for the next build to compare with.
    assert after["x.csv"]["columns"]["x"]["histogram"]["edges"][0] == 5.0


def test_drift_bins_option_sets_the_number_of_bins(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("x\n" + "".join(f"{v}\n" for v in range(40)))
    _, profile = _inspect(tmp_path, "x.csv", 10_000, [{"check": "drift", "bins": 20}])
    assert len(profile["columns"]["x"]["histogram"]["counts"]) == 20


def test_drift_without_a_previous_profile_passes_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("x\n1\n2\n")
    checks = parse_checks([{"check": "drift"}], ["x.csv"])
    [result], _ = inspect_outs(str(tmp_path), ["x.csv"], checks, {})
    assert result.passed
    assert result.message == "no previous build to compare with"


def test_drift_of_a_constant_column_that_changes_value_fails(tmp_path: Path) -> None:
    before = _profile(tmp_path, [5.0] * 10)
    # A constant column gets three bins: below, at and above its value.
    above = math.nextafter(5.0, math.inf)
    assert before["columns"]["x"]["histogram"] == {
        "edges": [5.0, 5.0, above, above],
        "counts": [0, 10, 0],
    }
    (tmp_path / "x.csv").write_text("x\n" + "500\n" * 10)
    checks = parse_checks([{"check": "drift", "columns": ["x"]}], ["x.csv"])
    [result], _ = inspect_outs(str(tmp_path), ["x.csv"], checks, {"x.csv": before})
    assert not result.passed, result.message


def test_drift_of_a_text_column_uses_the_previous_top_values(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("c\n" + "a\n" * 6 + "b\n" * 4)
    checks = parse_checks([{"check": "drift"}], ["c.csv"])
    _, before = inspect_outs(str(tmp_path), ["c.csv"], checks, {})
    (tmp_path / "c.csv").write_text("c\n" + "a\n" * 2 + "b\n" * 4 + "z\n" * 4)
    [result], _ = inspect_outs(str(tmp_path), ["c.csv"], checks, before)
    want = psi([6, 4, 0], [2, 4, 4])
    assert result.value == pytest.approx(want)
    assert result.passed is (want <= 0.2)
    assert not result.passed


# --------------------------------------------------------------------------- the math


def test_psi_of_identical_histograms_is_zero_whatever_their_totals() -> None:
    assert psi([10, 20, 30], [10, 20, 30]) == 0
    assert psi([1, 2, 3], [100, 200, 300]) == pytest.approx(0)


def test_psi_by_hand() -> None:
    # shares 0.5/0.5 -> 0.25/0.75
    want = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi([50, 50], [25, 75]) == pytest.approx(want)
    assert psi([50, 50], [25, 75]) == pytest.approx(0.274653, abs=1e-6)
    assert psi([25, 75], [50, 50]) == pytest.approx(want)  # symmetric


def test_psi_floors_empty_bins_at_epsilon() -> None:
    want = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - EPSILON) * math.log(0.5 / EPSILON)
    assert psi([10, 0], [5, 5]) == pytest.approx(want)
    assert math.isfinite(psi([10, 0, 0], [0, 0, 10]))


def test_ks_statistic_by_hand() -> None:
    assert ks_statistic([1, 1, 1, 1], [0, 0, 2, 2]) == pytest.approx(0.5)
    assert ks_statistic([1, 2, 3], [2, 4, 6]) == pytest.approx(0)
    assert ks_statistic([10, 0], [0, 10]) == pytest.approx(1.0)
    assert ks_statistic([0, 0], [0, 0]) == 0


def test_numeric_counts_puts_outliers_in_the_outer_bins() -> None:
    values = [-5.0, 0.0, 0.5, 1.0, 2.9, 3.0, 100.0]
    assert numeric_counts(values, [0.0, 1.0, 2.0, 3.0]) == [3, 1, 3]
    assert numeric_counts([], [0.0, 1.0, 2.0]) == [0, 0]
    assert numeric_counts([1.0, 2.0, 3.0], [5.0]) == [3]


def test_equal_edges() -> None:
    assert equal_edges(0.0, 10.0, 5) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    above = math.nextafter(3.0, math.inf)
    assert equal_edges(3.0, 3.0, 10) == [3.0, 3.0, above, above]
    assert equal_edges(0.0, math.inf, 10) == []


def test_categorical_shares_keep_the_previous_top_values_plus_other() -> None:
    old, new, names = categorical_shares(
        [{"value": "a", "count": 6}, {"value": "b", "count": 3}], 10, {"a": 2, "c": 5, "b": 1}
    )
    assert names == ["a", "b", "(other)"]
    assert old == [6.0, 3.0, 1.0]
    assert new == [2.0, 1.0, 5.0]


# --------------------------------------------------------------------------- review fixes


def test_drift_over_a_column_of_mostly_unique_text_is_not_comparable(tmp_path: Path) -> None:
    """Dates or ids stored as text: new values are not a distribution shift."""
    rows = "".join(f"2026-01-{d:02d},{d % 2}\n" for d in range(1, 29))
    (tmp_path / "t.csv").write_text("day,flag\n" + rows)
    checks = parse_checks([{"check": "drift"}], ["t.csv"])
    _, before = inspect_outs(str(tmp_path), ["t.csv"], checks, {})
    later = "".join(f"2026-03-{d:02d},{d % 2}\n" for d in range(1, 29))
    (tmp_path / "t.csv").write_text("day,flag\n" + later)
    results, _ = inspect_outs(str(tmp_path), ["t.csv"], checks, before)
    by_column = {r.column: r for r in results}
    assert by_column["day"].passed
    assert "not comparable: 28 distinct values" in by_column["day"].message
    assert by_column["flag"].passed and by_column["flag"].value is not None  # still judged


def test_a_bool_column_with_a_gap_still_counts_as_bool(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("ok\nTrue\n\nFalse\n")
    checks = parse_checks([{"check": "columns", "columns": {"ok": "bool"}}], ["t.csv"])
    [result], _ = inspect_outs(str(tmp_path), ["t.csv"], checks, {})
    assert result.passed, result.message
    (tmp_path / "t.csv").write_text("ok\nTrue\n\nmaybe\n")
    [result], _ = inspect_outs(str(tmp_path), ["t.csv"], checks, {})
    assert not result.passed and "column 'ok' is str, expected bool" in result.message


def test_python_checks_get_the_whole_table_in_one_frame(tmp_path: Path) -> None:
    from mlbuild.checks.tables import read_table

    (tmp_path / "t.csv").write_text("a\n" + "".join(f"{i}\n" for i in range(10)))
    frame = read_table(str(tmp_path), "t.csv")
    assert list(frame["a"]) == list(range(10))
