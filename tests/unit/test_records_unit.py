"""The strict record parser (store/records.py) and the target-name encoding (store/layout.py)."""

from __future__ import annotations

import json

import pytest

from mlbuild.digest import canonical_json, hash_bytes
from mlbuild.store.cache import Cache
from mlbuild.store.layout import target_file_name
from mlbuild.store.records import RecordError, parse_run, parse_tree

KEY = "xxh3-128:" + "1" * 32
OUT = {
    "path": "data/raw.csv",
    "type": "file",
    "xxh": "xxh3-128:" + "a" * 32,
    "sha256": "sha256:" + "b" * 64,
    "size": 3,
    "executable": False,
}


def _entry(**changes: object) -> bytes:
    body = {"version": 1, "key": KEY, "target": "t", "outs": [OUT], "manifest": None}
    body.update(changes)
    return json.dumps(body).encode()


def test_a_well_formed_entry_with_exactly_the_declared_outs_is_accepted() -> None:
    entry = parse_run(_entry(), KEY, "here", ["data/raw.csv"])
    assert [o.path for o in entry.outs] == ["data/raw.csv"]


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        _entry(version=2),
        _entry(key="xxh3-128:" + "2" * 32),
        _entry(outs=[{**OUT, "path": "/etc/passwd"}]),
        _entry(outs=[{**OUT, "path": "data/../x"}]),
        _entry(outs=[{**OUT, "xxh": "xxh3-128:../../x"}]),
        _entry(outs=[{**OUT, "size": "3"}]),
        _entry(outs=[OUT, OUT]),
        _entry(outs=[OUT, {**OUT, "path": "train.py"}]),
        _entry(manifest="sha256:../x"),
        _entry(undeclared=["extra.csv"]),
        _entry(undeclared={"../extra.csv": "xxh3-128:" + "c" * 32}),
        _entry(undeclared={"/etc/passwd": "xxh3-128:" + "c" * 32}),
        _entry(undeclared={"extra.csv": "xxh3-128:short"}),
    ],
)
def test_a_malformed_entry_is_refused_whole_naming_where_it_came_from(raw: bytes) -> None:
    with pytest.raises(RecordError, match="^remote runs/x: "):
        parse_run(raw, KEY, "remote runs/x", ["data/raw.csv"])


def test_object_paths_are_derived_only_from_checked_hex(tmp_path: object) -> None:
    cache = Cache(str(tmp_path))
    assert cache.object_path("xxh3-128:" + "ab" * 16).endswith("objects/ab/" + "ab" * 15)
    for bad in ("xxh3-128:xx/etc/passwd", "xxh3-128:" + "A" * 32, "sha1:" + "a" * 40, "x"):
        with pytest.raises(RecordError):
            cache.object_path(bad)


def test_a_tree_must_hash_to_its_name_and_list_safe_paths_once_in_order() -> None:
    f = "xxh3-128:" + "c" * 32
    good = canonical_json([["a", f, "f"], ["b/c", f, "x"]]).encode()
    assert parse_tree(good, hash_bytes(good), "t") == [("a", f, "f"), ("b/c", f, "x")]
    with pytest.raises(RecordError, match="corrupt tree object"):
        parse_tree(good, "xxh3-128:" + "0" * 32, "t")
    for entries in (
        [["b", f, "f"], ["a", f, "f"]],
        [["a", f, "f"], ["a", f, "f"]],
        [["../a", f, "f"]],
        [["a", f, "f"], ["a/b", f, "f"]],
        [["a", f, "s"]],
        [["a", "xxh3-128:1", "f"]],
    ):
        raw = canonical_json(entries).encode()
        with pytest.raises(RecordError):
            parse_tree(raw, hash_bytes(raw), "t")


def test_target_file_names_are_one_safe_segment_and_never_collide() -> None:
    names = [
        "model:prod",
        "data.v2",
        "..",
        ".",
        "a:b",
        "a__b",
        "a_:b",
        "a:_b",
        "",
        "a/../x",
        "x\0y",
        "model:{algo}",
        "%",
        "%2E",
        "_x",
        "kind:na.me",
    ]
    encoded = [target_file_name(n) for n in names]
    assert target_file_name("model:prod") == "model__prod"  # the documented form stays
    assert len(set(encoded)) == len(names)
    for e in encoded:
        assert e not in ("", ".", "..") and "/" not in e and "\0" not in e


@pytest.mark.parametrize(
    ("target", "link", "ok"),
    [
        ("../src.txt", "out/d/a", True),
        ("b", "out/d/a", True),
        ("../../../etc/passwd", "out/d/a", False),
        ("/etc/passwd", "out/d/a", False),
        ("..", "d/a", True),
        ("../..", "d/a", False),
        ("", "d/a", False),
    ],
)
def test_a_restored_link_may_only_point_inside_the_workspace(
    target: str, link: str, ok: bool
) -> None:
    from mlbuild.store.records import check_link_target

    if ok:
        assert check_link_target(target, link, "t") == target
    else:
        with pytest.raises(RecordError):
            check_link_target(target, link, "t")


def test_a_dask_workers_result_lands_only_the_jobs_declared_outs(tmp_path: object) -> None:
    """A worker's answer is read back data too: an out the job does not declare (a git
    hook) or a malformed record is refused before anything is fetched or written."""
    from types import SimpleNamespace

    from mlbuild.staging import RemoteStaging

    fetched: list[str] = []
    transfer = SimpleNamespace(
        remote=SimpleNamespace(url="file:///nowhere", options={}),
        fetch_out=lambda rec: fetched.append(rec.path),
    )
    staging = RemoteStaging(str(tmp_path), None, Cache(str(tmp_path)), transfer)  # type: ignore[arg-type]
    for outs in (
        [{**OUT, "path": ".git/hooks/pre-commit"}],
        [OUT, {**OUT, "path": "train.py"}],
        [{**OUT, "xxh": "xxh3-128:../../x"}],
    ):
        with pytest.raises(RecordError, match="Dask worker"):
            staging.land(outs, ("data/raw.csv",))
    assert fetched == []


def test_an_entry_keeps_the_undeclared_reads_it_recorded() -> None:
    reads = {"data/extra.csv": "xxh3-128:" + "c" * 32}
    entry = parse_run(_entry(undeclared=reads), KEY, "here", ["data/raw.csv"])
    assert entry.undeclared == reads


@pytest.mark.parametrize(
    "undeclared",
    [
        ["extra.csv"],
        {"../extra.csv": "xxh3-128:" + "c" * 32},
        {"/etc/passwd": "xxh3-128:" + "c" * 32},
        {"extra.csv": "sha256:" + "c" * 64},
    ],
)
def test_a_lock_file_with_a_malformed_undeclared_read_is_corrupt(undeclared: object) -> None:
    from mlbuild.errors import ConfigError
    from mlbuild.store.lockfile import LockFile

    entry = {"key": KEY, "components": {}, "outs": [OUT], "undeclared": undeclared}
    raw = json.dumps({"version": 1, "targets": {"t": entry}}).encode()
    with pytest.raises(ConfigError, match="^mlbuild.lock is corrupt"):
        LockFile.parse("mlbuild.lock", raw)


@pytest.mark.parametrize(
    "reads",
    [
        "extra.csv",
        [{"path": "../extra.csv", "xxh3": "xxh3-128:" + "c" * 32}],
        [{"path": "extra.csv", "xxh3": "xxh3-128:../../x"}],
        ["extra.csv"],
    ],
)
def test_a_manifest_with_a_malformed_undeclared_read_is_refused(reads: object) -> None:
    from mlbuild.provenance.parse import parse_manifest
    from mlbuild.provenance.records import ManifestError, manifest_id
    from tests.fakes import minimal_manifest

    doc = minimal_manifest(undeclared={"extra.csv": "xxh3-128:" + "c" * 32})
    mid = manifest_id(doc)
    assert parse_manifest(canonical_json(doc).encode(), mid, "t")["undeclared_reads"]
    doc["undeclared_reads"] = reads  # forged on purpose
    with pytest.raises(ManifestError, match="undeclared_reads"):
        parse_manifest(canonical_json(doc).encode(), manifest_id(doc), "t")
