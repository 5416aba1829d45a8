"""Data checks on tabular outs: verdicts and profiles in the manifest, rejection with exit 3."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Project

Workspace = Callable[..., Project]
ProjectFactory = Callable[[str], Project]

RAW_CHECKS = {"columns", "not_null", "unique", "range", "allowed", "rows", "drift"}


def _table(p: Project, rel: str = "src/people.csv") -> list[dict[str, str]]:
    header, *lines = p.read(rel).splitlines()
    return [dict(zip(header.split(","), line.split(","), strict=True)) for line in lines]


def _write_table(p: Project, rows: list[dict[str, str]], rel: str = "src/people.csv") -> None:
    header = list(rows[0])
    body = [",".join(row[c] for c in header) for row in rows]
    p.write(rel, "\n".join([",".join(header), *body]) + "\n")


def _edit(p: Project, row_id: int, **values: str) -> None:
    rows = _table(p)
    [row] = [r for r in rows if r["id"] == str(row_id)]
    row.update(values)
    _write_table(p, rows)


def _shift_income(p: Project, by: float) -> None:
    rows = _table(p)
    for row in rows:
        row["income"] = str(float(row["income"]) + by)
    _write_table(p, rows)


def _failing(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in checks if not c["passed"]]


# --------------------------------------------------------------------------- passing checks


def test_every_check_kind_passes_on_good_data_and_is_recorded(project: ProjectFactory) -> None:
    p = project("ml_checks")
    assert p.build("-j", "2").ran == ["data:raw", "features:train", "report:summary"]
    raw = p.manifest("data:raw")[1]
    assert {c["check"] for c in raw["checks"]} == RAW_CHECKS
    assert _failing(raw["checks"]) == []
    assert all(c["out"] == "data/raw.csv" and c["severity"] == "error" for c in raw["checks"])
    [drift] = [c for c in raw["checks"] if c["check"] == "drift"]
    assert drift["message"] == "no previous build to compare with"
    [rows] = [c for c in raw["checks"] if c["check"] == "rows"]
    assert rows["message"] == "40 rows, expected [20, 1000]"
    features = p.manifest("features:train")[1]
    by_out = Counter((c["check"], c["out"]) for c in features["checks"])
    # `out:` narrows a check to one out; the others read every tabular out.
    assert by_out == {
        ("columns", "data/features.parquet"): 1,
        ("columns", "data/features.jsonl"): 1,
        ("rows", "data/features.parquet"): 1,
        ("not_null", "data/features.parquet"): 1,
        ("not_null", "data/features.jsonl"): 1,
        ("python", "data/features.parquet"): 1,
        ("python", "data/features.jsonl"): 1,
    }
    assert _failing(features["checks"]) == []
    assert "quality:all_above passed" in {c["message"] for c in features["checks"]}
    # Parquet and JSON Lines outs are profiled like CSV.
    tables = features["profile"]["tables"]
    assert sorted(tables) == ["data/features.jsonl", "data/features.parquet"]
    parquet, jsonl = tables["data/features.parquet"], tables["data/features.jsonl"]
    assert parquet["rows"] == jsonl["rows"] == 40
    dtypes = {name: col["dtype"] for name, col in parquet["columns"].items()}
    assert dtypes == {"id": "int", "income_k": "float", "senior": "bool", "city": "str"}
    assert {name: col["dtype"] for name, col in jsonl["columns"].items()} == dtypes
    for name in ("id", "income_k"):
        for stat in ("min", "max", "count", "nulls"):
            assert parquet["columns"][name][stat] == jsonl["columns"][name][stat]
        assert parquet["columns"][name]["mean"] == pytest.approx(jsonl["columns"][name]["mean"])
    seniors = sum(int(r["age"]) >= 60 for r in _table(p))
    top = {t["value"]: t["count"] for t in parquet["columns"]["senior"]["top"]}
    assert top == {"True": seniors, "False": 40 - seniors}
    assert p.manifest("report:summary")[1]["profile"]["tables"] == {}


def test_profile_of_a_csv_out_summarizes_every_column(project: ProjectFactory) -> None:
    p = project("ml_checks")
    p.build("data:raw")
    profile = p.manifest("data:raw")[1]["profile"]
    assert profile["schema"] == "mlbuild.profile/v1"
    assert list(profile["tables"]) == ["data/raw.csv"]
    table = profile["tables"]["data/raw.csv"]
    rows = _table(p)
    assert table["rows"] == len(rows) == 40
    assert sorted(table["columns"]) == ["age", "city", "id", "income", "signup"]

    incomes = [float(r["income"]) for r in rows]
    income = table["columns"]["income"]
    assert income["dtype"] == "float"
    assert income["nulls"] == 0
    assert income["count"] == 40
    assert income["min"] == min(incomes)
    assert income["max"] == max(incomes)
    assert income["mean"] == pytest.approx(statistics.fmean(incomes))
    assert income["std"] == pytest.approx(statistics.pstdev(incomes))
    hist = income["histogram"]
    assert len(hist["edges"]) == len(hist["counts"]) + 1 == 11
    assert hist["edges"][0] == min(incomes)
    assert hist["edges"][-1] == max(incomes)
    assert sum(hist["counts"]) == 40
    assert hist["edges"] == sorted(hist["edges"])

    ages = [int(r["age"]) for r in rows]
    age = table["columns"]["age"]
    assert (age["dtype"], age["min"], age["max"]) == ("int", min(ages), max(ages))
    assert isinstance(age["min"], int)

    city = table["columns"]["city"]
    counts = Counter(r["city"] for r in rows)
    assert city["dtype"] == "str"
    assert (city["nulls"], city["count"], city["distinct"]) == (0, 40, 3)
    assert city["top"] == [
        {"value": v, "count": n} for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    assert "histogram" not in city


def test_tabular_out_without_checks_is_profiled_with_its_nulls(workspace: Workspace) -> None:
    p = workspace(
        "version: 1\n"
        "targets:\n"
        "  data:scores:\n"
        "    cmd: cp src/scores.tsv ${outs[0]} && cp src/notes.txt ${outs[1]}\n"
        "    deps: [src/scores.tsv, src/notes.txt]\n"
        "    outs: [data/scores.tsv, data/notes.txt]\n",
        {
            "src/scores.tsv": "name\tscore\nann\t1.5\nbob\t\ncid\t4.5\n\tnan\n",
            "src/notes.txt": "not a table\n",
        },
    )
    p.build()
    doc = p.manifest("data:scores")[1]
    assert doc["checks"] == []
    assert list(doc["profile"]["tables"]) == ["data/scores.tsv"]
    table = doc["profile"]["tables"]["data/scores.tsv"]
    assert table["rows"] == 4
    score = table["columns"]["score"]
    assert (score["dtype"], score["nulls"], score["count"]) == ("float", 2, 2)
    assert (score["min"], score["max"], score["mean"]) == (1.5, 4.5, 3)
    name = table["columns"]["name"]
    assert (name["dtype"], name["nulls"], name["count"], name["distinct"]) == ("str", 1, 3, 3)


# --------------------------------------------------------------------------- failing checks


@pytest.mark.parametrize(
    ("kind", "row_id", "values", "message"),
    [
        ("not_null", 5, {"age": ""}, "column 'age' has 1 null value(s)"),
        ("unique", 9, {"id": "7"}, "column 'id' has 1 duplicate value(s), e.g. 7"),
        ("range", 3, {"age": "150"}, "1 value(s) of 'age' not within [0, 120], e.g. [150]"),
        (
            "allowed",
            3,
            {"city": "paris"},
            "1 value(s) of 'city' not in ['oslo', 'rome', 'lima'], e.g. ['paris']",
        ),
        ("columns", 3, {"income": "unknown"}, "column 'income' is str, expected float"),
        ("columns", 3, {"signup": "someday"}, "column 'signup' is str, expected datetime"),
    ],
)
def test_bad_data_fails_exactly_the_check_that_guards_it(
    project: ProjectFactory, kind: str, row_id: int, values: dict[str, str], message: str
) -> None:
    p = project("ml_checks")
    _edit(p, row_id, **values)
    run = p.mlbuild("--json", "-j", "2")
    assert run.code == 3, run.err
    [failed] = [e for e in run.events if e.get("outcome") == "failed"]
    assert failed["target"] == "data:raw"
    assert failed["checks_failed"] is True
    assert f"{kind} check on data/raw.csv: {message}" in failed["error"]
    assert "rejected outs kept in .mlbuild/failed/data__raw/" in failed["error"]
    findings = json.loads(p.read(".mlbuild/failed/data__raw/checks.json"))
    assert [(f["check"], f["message"]) for f in _failing(findings)] == [(kind, message)]
    assert {f["check"] for f in findings} == RAW_CHECKS
    # Never built before: nothing to put back, nothing recorded, nothing downstream.
    assert not p.path("data/raw.csv").exists()
    assert p.read(".mlbuild/failed/data__raw/data/raw.csv") == p.read("src/people.csv")
    assert "data:raw" not in p.lock_entries()
    assert not p.path("data/features.parquet").exists()


def test_row_count_and_strict_columns_fail_with_what_was_found(project: ProjectFactory) -> None:
    p = project("ml_checks")
    rows = _table(p)[:12]
    for row in rows:
        row["email"] = "x@example.com"
    _write_table(p, rows)
    run = p.mlbuild("data:raw")
    assert run.code == 3
    assert "data:raw: columns check on data/raw.csv: unexpected column(s) email" in run.err
    assert "rows check on data/raw.csv: 12 rows, expected [20, 1000]" in run.err
    assert "mlbuild: error: 1 target rejected by a check or gate: data:raw" in run.err
    assert "Traceback" not in run.err


def test_range_on_a_text_column_fails_instead_of_passing(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n"
        "  data:t:\n"
        "    cmd: cp src/t.csv ${outs[0]}\n"
        "    deps: [src/t.csv]\n"
        "    outs: [data/t.csv]\n"
        "    checks:\n"
        "      - {check: range, column: city, min: 0}\n"
        "      - {check: rows, max: 1}\n",
        {"src/t.csv": "city,n\noslo,1\nrome,2\n"},
    )
    run = p.mlbuild("--json")
    assert run.code == 3
    findings = _failing(json.loads(p.read(".mlbuild/failed/data__t/checks.json")))
    assert [(f["check"], f["message"]) for f in findings] == [
        ("range", "column 'city' is str, not numeric"),
        ("rows", "2 rows, expected [0, 1]"),
    ]


def test_tightening_a_check_revalidates_the_built_data(project: ProjectFactory) -> None:
    p = project("ml_checks")
    p.build("data:raw")
    built = p.read("data/raw.csv")
    p.replace("mlbuild.yaml", "{check: rows, min: 20, max: 1000}", "{check: rows, min: 50}")
    run = p.mlbuild("data:raw")
    assert run.code == 3
    assert "validation checks" in run.out
    assert "rows check on data/raw.csv: 40 rows, expected [50, inf]" in run.err
    assert p.read("data/raw.csv") == built


def test_check_on_a_missing_column_names_it_and_lists_the_columns(
    project: ProjectFactory,
) -> None:
    p = project("ml_checks")
    p.replace("mlbuild.yaml", "columns: [id, age]}", "columns: [id, agee]}")
    run = p.mlbuild("data:raw")
    assert run.code == 3
    assert (
        "not_null check on data/raw.csv: column 'agee' does not exist in data/raw.csv "
        "(columns: id, age, income, city, signup); did you mean 'age'?"
    ) in run.err
    assert not p.path("data/raw.csv").exists()


def test_failed_check_on_parquet_and_jsonl_outs_rejects_both(project: ProjectFactory) -> None:
    p = project("ml_checks")
    _edit(p, 3, income="100.0")
    run = p.mlbuild("--json", "-j", "2")
    assert run.code == 3, run.err
    assert run.ran == ["data:raw"]
    [failed] = [e for e in run.events if e.get("outcome") == "failed"]
    assert failed["target"] == "features:train"
    assert (
        "python check on data/features.parquet: quality:all_above: "
        "1 row(s) with income_k <= 0.5" in failed["error"]
    )
    findings = _failing(json.loads(p.read(".mlbuild/failed/features__train/checks.json")))
    assert sorted(f["out"] for f in findings) == ["data/features.jsonl", "data/features.parquet"]
    assert p.path(".mlbuild/failed/features__train/data/features.parquet").exists()
    assert p.path(".mlbuild/failed/features__train/data/features.jsonl").exists()
    assert not p.path("data/features.parquet").exists()
    assert not p.path("reports/summary.txt").exists()
    assert sorted(p.lock_entries()) == ["data:raw"]


# --------------------------------------------------------------------------- severity


def test_warn_severity_prints_records_and_keeps_the_build(project: ProjectFactory) -> None:
    p = project("ml_checks")
    p.replace(
        "mlbuild.yaml",
        "{check: unique, columns: [id]}",
        "{check: unique, columns: [id], severity: warn}",
    )
    _edit(p, 9, id="7")
    run = p.mlbuild("data:raw")
    assert run.code == 0, run.err
    assert "warning: data:raw: unique check on data/raw.csv: column 'id' has 1 duplicate" in run.err
    assert p.read("data/raw.csv") == p.read("src/people.csv")
    [unique] = [c for c in p.manifest("data:raw")[1]["checks"] if c["check"] == "unique"]
    assert unique["passed"] is False
    assert unique["severity"] == "warn"
    assert "data:raw" in p.lock_entries()
    as_json = p.mlbuild("--json", "-B", "data:raw")
    assert as_json.code == 0
    warnings = [e["message"] for e in as_json.events if e["event"] == "warning"]
    assert any("column 'id' has 1 duplicate value(s)" in w for w in warnings)


def test_a_rejection_next_to_a_command_failure_exits_1(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n"
        "  data:t:\n"
        "    cmd: cp src/t.csv ${outs[0]}\n"
        "    deps: [src/t.csv]\n"
        "    outs: [data/t.csv]\n"
        "    checks: [{check: rows, min: 5}]\n"
        "  broken:\n"
        "    cmd: exit 7\n"
        "  fine:\n"
        "    cmd: echo ok > ${outs[0]}\n"
        "    outs: [fine.txt]\n",
        {"src/t.csv": "a\n1\n"},
    )
    both = p.mlbuild("--json", "-k", "data:t", "broken", "fine")
    assert both.code == 1
    assert both.outcomes("failed") == ["broken", "data:t"]
    assert both.ran == ["fine"]
    only_check = p.mlbuild("--json", "-k", "data:t", "fine")
    assert only_check.code == 3
    assert only_check.outcomes("failed") == ["data:t"]


# --------------------------------------------------------------------------- drift


def test_drift_passes_on_the_same_data_and_on_a_small_change(project: ProjectFactory) -> None:
    p = project("ml_checks")
    p.build("data:raw")
    assert p.build("-B", "data:raw").ran == ["data:raw"]
    drift = [c for c in p.manifest("data:raw")[1]["checks"] if c["check"] == "drift"]
    assert [(c["column"], c["passed"], c["value"]) for c in drift] == [
        ("income", True, 0.0),
        ("city", True, 0.0),
    ]
    assert drift[0]["message"] == "column 'income': PSI 0.0000 (max 0.2)"
    p.write("src/people.csv", p.read("src/people.csv") + "41,33,1180.5,oslo,2024-02-11\n")
    assert p.build("data:raw").ran == ["data:raw"]
    drift = [c for c in p.manifest("data:raw")[1]["checks"] if c["check"] == "drift"]
    assert [c["passed"] for c in drift] == [True, True]
    assert 0 < drift[0]["value"] < 0.2
    assert 0 < drift[1]["value"] < 0.2


def test_drifted_data_is_rejected_and_the_previous_build_stays(project: ProjectFactory) -> None:
    p = project("ml_checks")
    p.build("-j", "2")
    lock_before = p.path("mlbuild.lock").read_bytes()
    raw_before = p.read("data/raw.csv")
    features_before = p.path("data/features.parquet").read_bytes()
    original = p.read("src/people.csv")
    _shift_income(p, 2000)

    run = p.mlbuild("--json", "-j", "2")
    assert run.code == 3
    assert run.ran == []
    [failed] = [e for e in run.events if e.get("outcome") == "failed"]
    assert failed["target"] == "data:raw"
    assert "drift check on data/raw.csv: column 'income': PSI " in failed["error"]
    findings = json.loads(p.read(".mlbuild/failed/data__raw/checks.json"))
    [bad] = _failing(findings)
    assert (bad["check"], bad["column"]) == ("drift", "income")
    assert bad["value"] > 0.2
    assert f"PSI {bad['value']:.4f} (max 0.2)" in failed["error"]
    assert [c["passed"] for c in findings if c["check"] == "drift"] == [False, True]
    # The rejected outs are kept aside; the workspace and the lock are as before.
    assert p.read(".mlbuild/failed/data__raw/data/raw.csv") == p.read("src/people.csv")
    assert p.read("data/raw.csv") == raw_before
    assert p.path("data/features.parquet").read_bytes() == features_before
    assert p.path("mlbuild.lock").read_bytes() == lock_before
    status = p.mlbuild("status", "data:raw")
    assert status.code == 0
    assert status.out.split()[:2] == ["data:raw", "stale"]
    assert "dep src/people.csv changed" in status.out
    assert p.mlbuild("-q", "data:raw").code == 1
    # Putting the input back leaves nothing to do: the previous build is still current.
    p.write("src/people.csv", original)
    assert p.mlbuild("-q").code == 0
    assert p.build().ran == []


def test_drift_in_a_text_column_names_that_column(project: ProjectFactory) -> None:
    p = project("ml_checks")
    p.build("data:raw")
    rows = _table(p)
    for row in rows[:30]:
        row["city"] = "oslo"
    _write_table(p, rows)
    run = p.mlbuild("data:raw")
    assert run.code == 3
    assert "data:raw: drift check on data/raw.csv: column 'city': PSI " in run.err
    assert "column 'income'" not in run.err
    assert "Traceback" not in run.err


def test_ks_drift_threshold(workspace: Workspace) -> None:
    before = "x\n" + "".join(f"{i}\n" for i in range(20))
    p = workspace(
        "targets:\n"
        "  data:x:\n"
        "    cmd: cp src/x.csv ${outs[0]}\n"
        "    deps: [src/x.csv]\n"
        "    outs: [data/x.csv]\n"
        "    checks: [{check: drift, columns: [x], max_ks: 0.3}]\n",
        {"src/x.csv": before},
    )
    p.build()
    p.write("src/x.csv", "x\n" + "".join(f"{i + 8}\n" for i in range(20)))
    run = p.mlbuild("data:x")
    assert run.code == 3
    assert "drift check on data/x.csv: column 'x': KS " in run.err
    [bad] = _failing(json.loads(p.read(".mlbuild/failed/data__x/checks.json")))
    assert bad["value"] == pytest.approx(0.4)
    assert p.read("data/x.csv") == before


def test_warn_drift_records_the_psi_and_takes_the_new_data(project: ProjectFactory) -> None:
    p = project("ml_checks")
    p.replace("mlbuild.yaml", "max_psi: 0.2}", "max_psi: 0.2, severity: warn}")
    p.build("data:raw")
    _shift_income(p, 2000)
    run = p.mlbuild("data:raw")
    assert run.code == 0, run.err
    assert "warning: data:raw: drift check on data/raw.csv: column 'income': PSI " in run.err
    assert p.read("data/raw.csv") == p.read("src/people.csv")
    [income] = [c for c in p.manifest("data:raw")[1]["checks"] if c.get("column") == "income"]
    assert (income["passed"], income["severity"]) == (False, "warn")
    assert income["value"] > 0.2


# --------------------------------------------------------------------------- python checks

CUSTOM = """\
def ok(df):
    return None


def yes(df):
    return True


def no(df):
    return False


def over(df, column, limit):
    n = int((df[column] > limit).sum())
    return f"{n} value(s) of {column} over {limit}" if n else None


def sees_rows(df, rows):
    return len(df) == rows


def boom(df):
    raise ValueError("cannot judge this table")


def all_positive(df):
    return (df["n"] > 0).all()


def all_big(df):
    return (df["n"] > 2).all()
"""


def test_python_check_verdicts(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n"
        "  data:t:\n"
        "    cmd: cp src/t.csv ${outs[0]}\n"
        "    deps: [src/t.csv]\n"
        "    outs: [data/t.csv]\n"
        "    checks:\n"
        '      - {check: python, python: "custom:ok"}\n'
        '      - {check: python, python: "custom:yes"}\n'
        '      - {check: python, python: "custom:sees_rows", args: {rows: 3}}\n'
        '      - {check: python, python: "custom:no"}\n'
        '      - {check: python, python: "custom:over", args: {column: n, limit: 1}}\n'
        '      - {check: python, python: "custom:boom"}\n'
        '      - {check: python, python: "custom:nope"}\n'
        '      - {check: python, python: "custom:no", severity: warn}\n'
        '      - {check: python, python: "custom:all_positive"}\n'
        '      - {check: python, python: "custom:all_big"}\n',
        {"src/t.csv": "n\n1\n2\n3\n", "custom.py": CUSTOM},
    )
    run = p.mlbuild("data:t")
    assert run.code == 3
    findings = json.loads(p.read(".mlbuild/failed/data__t/checks.json"))
    assert [(f["passed"], f["severity"], f["message"]) for f in findings] == [
        (True, "error", "custom:ok passed"),
        (True, "error", "custom:yes passed"),
        (True, "error", "custom:sees_rows passed"),
        (False, "error", "custom:no returned False"),
        (False, "error", "custom:over: 2 value(s) of n over 1"),
        (False, "error", "custom:boom raised ValueError: cannot judge this table"),
        (False, "error", findings[6]["message"]),
        (False, "warn", "custom:no returned False"),
        # A pandas reduction returns numpy booleans: they mean what True and False mean.
        (True, "error", "custom:all_positive passed"),
        (False, "error", "custom:all_big returned False"),
    ]
    assert findings[6]["message"].startswith("cannot load check custom:nope")
    assert "data:t: python check on data/t.csv: custom:no returned False" in run.err
    assert "custom:boom raised ValueError: cannot judge this table" in run.err
    assert "Traceback" not in run.err
    assert not p.path("data/t.csv").exists()


def test_editing_a_python_check_makes_its_target_stale(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n"
        "  data:t:\n"
        "    cmd: cp src/t.csv ${outs[0]}\n"
        "    deps: [src/t.csv]\n"
        "    outs: [data/t.csv]\n"
        '    checks: [{check: python, python: "custom:over", args: {column: n, limit: 5}}]\n',
        {"src/t.csv": "n\n1\n2\n3\n", "custom.py": CUSTOM},
    )
    p.build()
    p.replace("custom.py", "> limit", ">= limit - 4")
    run = p.mlbuild("data:t")
    assert run.code == 3
    assert "code custom.py changed" in run.out
    assert "custom:over: 3 value(s) of n over 5" in run.err


# --------------------------------------------------------------------------- config errors


def _config_with_check(check: str, outs: str = "[data/t.csv, models/m.txt]") -> str:
    return (
        "version: 1\n"
        "targets:\n"
        "  data:t:\n"
        "    cmd: touch ran.txt\n"
        f"    outs: {outs}\n"
        "    checks:\n"
        f"      - {check}\n"
    )


@pytest.mark.parametrize(
    ("check", "outs", "message"),
    [
        (
            "{check: rows, min: 1, out: models/m.txt}",
            "[data/t.csv, models/m.txt]",
            "mlbuild.yaml:7:36: check on a non-tabular out 'models/m.txt' "
            "(checks read .csv, .tsv, .parquet, .pq, .jsonl, .ndjson files)",
        ),
        (
            "{check: rows, min: 1}",
            "[models/m.txt]",
            "mlbuild.yaml:7:9: a rows check needs a tabular out, and this target has none "
            "(models/m.txt)",
        ),
        (
            "{check: not_nul, columns: [a]}",
            "[data/t.csv]",
            "mlbuild.yaml:7:17: unknown check 'not_nul' (did you mean 'not_null'?)",
        ),
        (
            "{check: range, min: 0}",
            "[data/t.csv]",
            "mlbuild.yaml:7:9: the range check needs 'column'",
        ),
        (
            "{check: allowed, column: a}",
            "[data/t.csv]",
            "needs 'values'",
        ),
        (
            "{check: range, column: a, minimum: 0}",
            "[data/t.csv]",
            "mlbuild.yaml:7:35: unknown key 'minimum' in a range check (did you mean 'min'?)",
        ),
        (
            "{check: columns, columns: {a: integer}}",
            "[data/t.csv]",
            "mlbuild.yaml:7:39: unknown dtype 'integer' for column 'a' (did you mean 'int'?)",
        ),
        (
            "{check: rows, min: 1, severity: fatal}",
            "[data/t.csv]",
            "mlbuild.yaml:7:41: severity must be 'error' or 'warn'",
        ),
        (
            "{check: rows, min: 1, out: data/other.csv}",
            "[data/t.csv]",
            "mlbuild.yaml:7:36: check out 'data/other.csv' is not an out of this target",
        ),
        (
            "{check: python, python: 'qualty:ok'}",
            "[data/t.csv]",
            "mlbuild.yaml:7:33: module 'qualty' of 'qualty:ok' is neither in the workspace "
            "(qualty.py) nor installed",
        ),
    ],
)
def test_bad_check_declarations_are_config_errors_before_anything_runs(
    workspace: Workspace, check: str, outs: str, message: str
) -> None:
    p = workspace(_config_with_check(check, outs))
    run = p.mlbuild()
    assert run.code == 2
    assert message in run.err
    assert "Traceback" not in run.err
    assert not p.path("ran.txt").exists()
