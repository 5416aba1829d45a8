"""ManifestStore history indexes (issue 11 follow-up): one file per target, named by
`target_file_name`; a line counts for a target only if it points at a manifest of that
target; histories an older mlbuild kept under the old, shared name are still read, without
the other target's builds leaking in."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlbuild.provenance.records import Identity, Manifest, build_manifest
from mlbuild.provenance.store import ManifestStore
from mlbuild.store.layout import target_file_name

_IDENTITY = Identity("ann", "h", "3.11", "linux", {"commit": None, "dirty": None})


def _manifest(target: str, n: int) -> Manifest:
    """A distinct, valid build manifest of ``target`` (``n`` varies its key)."""
    return build_manifest(
        target=target,
        status="built",
        key="xxh3-128:" + f"{n:032x}",
        components={},
        started=float(n),
        finished=float(n) + 1,
        identity=_IDENTITY,
        deps=[],
        outs=[],
        log_digest=None,
        env={},
    )


def _store(tmp_path: Path) -> ManifestStore:
    return ManifestStore(str(tmp_path / ".mlbuild" / "manifests"))


def _index(tmp_path: Path, name: str) -> Path:
    return tmp_path / ".mlbuild" / "manifests" / "index" / name


def test_a_colon_b_and_a__b_keep_apart_histories(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ids: dict[str, list[str]] = {"a:b": [], "a__b": []}
    for n in range(4):
        target = ("a:b", "a__b")[n % 2]
        ids[target].append(store.put(_manifest(target, n)))
    fresh = _store(tmp_path)  # nothing remembered from the puts
    for target, mine in ids.items():
        assert (fresh.history(target), fresh.current(target)) == (mine, mine[-1])
        assert fresh.index_problems(target) == []
    assert _index(tmp_path, "a__b.jsonl").read_text().split() == ids["a:b"]
    assert _index(tmp_path, "%a%5F%5Fb.jsonl").read_text().split() == ids["a__b"]


@pytest.mark.parametrize("target", ["model:prod", "data.v2", "x-y_z", "a_b:c", "_a:b.c"])
def test_a_readable_name_keeps_the_history_file_it_always_had(
    tmp_path: Path, target: str
) -> None:
    store = _store(tmp_path)
    mid = store.put(_manifest(target, 1))
    old_name = target.replace(":", "__") + ".jsonl"  # what mlbuild always wrote
    assert target_file_name(target) + ".jsonl" == old_name
    assert _index(tmp_path, old_name).read_text() == mid + "\n"


def test_a_line_naming_another_targets_manifest_never_becomes_its_build(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    data = store.put(_manifest("data", 1))
    model = store.put(_manifest("model", 2))
    with _index(tmp_path, "data.jsonl").open("a") as f:
        f.write(model + "\nnot-an-id\n")
    fresh = _store(tmp_path)
    assert (fresh.history("data"), fresh.current("data")) == ([data], data)
    problems = [p.message for p in fresh.index_problems("data")]
    assert len(problems) == 2
    assert f"line 2: {model} is a manifest of model, not of data (skipped)" in problems[0]
    assert "line 3: 'not-an-id' is not a manifest id (skipped)" in problems[1]
    # Reproductions are judged the same way.
    reproductions = tmp_path / ".mlbuild" / "manifests" / "reproductions"
    reproductions.mkdir()
    (reproductions / "data.jsonl").write_text(model + "\n")
    ids, skipped = fresh.reproductions("data")
    assert ids == [] and "is a manifest of model, not of data" in skipped[0].message


def test_a_missing_manifest_stays_in_its_own_targets_history(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = store.put(_manifest("data", 1))
    second = store.put(_manifest("data", 2))
    Path(store.path(second)).unlink()
    fresh = _store(tmp_path)
    # Kept: `history` lists it as missing, `manifest show` and `audit` refuse it.
    assert (fresh.history("data"), fresh.current("data")) == ([first, second], second)
    assert fresh.index_problems("data") == []


def _legacy_workspace(tmp_path: Path) -> tuple[ManifestStore, dict[str, list[str]]]:
    """A workspace as an older mlbuild left it: a:b and a__b both in ``a__b.jsonl``."""
    store = _store(tmp_path)
    ids: dict[str, list[str]] = {"a:b": [], "a__b": []}
    for n, target in enumerate(["a__b", "a:b", "a__b", "a:b"]):
        ids[target].append(store.put(_manifest(target, n)))
    shared = [ids["a__b"][0], ids["a:b"][0], ids["a__b"][1], ids["a:b"][1]]
    _index(tmp_path, "a__b.jsonl").write_text("".join(m + "\n" for m in shared))
    _index(tmp_path, "%a%5F%5Fb.jsonl").unlink()
    return _store(tmp_path), ids


def test_a_history_written_under_the_old_shared_name_is_read_without_the_other_target(
    tmp_path: Path,
) -> None:
    store, ids = _legacy_workspace(tmp_path)
    for target, mine in ids.items():
        assert (store.history(target), store.current(target)) == (mine, mine[-1])
        assert store.index_problems(target) == []  # the other's lines were written there
    # The next build of a__b goes to the new name, which starts with its old history.
    new = store.put(_manifest("a__b", 9))
    assert _index(tmp_path, "%a%5F%5Fb.jsonl").read_text().split() == [*ids["a__b"], new]
    fresh = _store(tmp_path)
    assert (fresh.history("a__b"), fresh.current("a__b")) == ([*ids["a__b"], new], new)
    assert fresh.history("a:b") == ids["a:b"]
    leftovers = [p.name for p in _index(tmp_path, "x").parent.iterdir()]
    assert sorted(leftovers) == ["%a%5F%5Fb.jsonl", "a__b.jsonl"]


def test_an_unreadable_line_of_the_old_shared_file_is_skipped_and_reported(
    tmp_path: Path,
) -> None:
    store, ids = _legacy_workspace(tmp_path)
    Path(store.path(ids["a:b"][1])).unlink()  # whose was it? a:b's, or a__b's?
    assert store.history("a__b") == ids["a__b"]
    [problem] = store.index_problems("a__b")
    assert f"line 4: {ids['a:b'][1]} cannot be read to check" in problem.message
    assert store.history("a:b") == ids["a:b"]  # its own file: kept, named where used


def test_the_new_history_file_starts_from_the_old_one_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, ids = _legacy_workspace(tmp_path)

    def no_links(src: str, dst: str) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("mlbuild.provenance.store.os.link", no_links)
    new = store.put(_manifest("a__b", 9))
    assert _store(tmp_path).history("a__b") == [*ids["a__b"], new]
    assert not [p for p in _index(tmp_path, "x").parent.iterdir() if p.name.startswith(".tmp-")]
