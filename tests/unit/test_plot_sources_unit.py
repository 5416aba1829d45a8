"""Where `plots diff ID` reads a recorded plot file: the cache object its manifest names,
verified (plots/sources.py). A corrupt object, a digest of the wrong shape or a path the
manifest does not record is named in one line, never drawn, never a path of its own."""

from __future__ import annotations

import os
from pathlib import Path

from mlbuild.digest import hash_bytes
from mlbuild.plots.sources import Build
from mlbuild.store.cache import Cache

DATA = b"step,loss\n0,1.0\n1,0.5\n"


def _build(cache: Cache, xxh: str, path: str = "plots/loss.csv") -> Build:
    manifest = {"target": "t", "outs": [{"path": path, "type": "file", "xxh3": xxh}]}
    return Build(cache, "sha256:" + "a" * 64, manifest)


def _store(tmp_path: Path, data: bytes) -> tuple[Cache, str]:
    cache = Cache(str(tmp_path / "cache"))
    src = tmp_path / "src.csv"
    src.write_bytes(data)
    digest = hash_bytes(DATA)
    cache.store_file(str(src), digest)  # stored under DATA's digest, whatever its bytes
    return cache, digest


def test_a_recorded_plot_file_is_read_from_the_cache(tmp_path: Path) -> None:
    cache, digest = _store(tmp_path, DATA)
    assert _build(cache, digest).read("t", "plots/loss.csv") == (DATA, "")


def test_a_corrupt_cache_object_is_named_and_not_drawn(tmp_path: Path) -> None:
    cache, digest = _store(tmp_path, b"step,loss\n0,9.9\n1,0.5\n")
    data, why = _build(cache, digest).read("t", "plots/loss.csv")
    assert data is None and "is corrupt" in why and "mlbuild cache verify" in why


def test_a_digest_of_the_wrong_shape_is_named_and_makes_no_path(tmp_path: Path) -> None:
    cache, _ = _store(tmp_path, DATA)
    outside = tmp_path / "outside"
    outside.write_bytes(DATA)
    forged = "xxh3-128:../../../" + os.path.relpath(outside, cache.objects)
    data, why = _build(cache, forged).read("t", "plots/loss.csv")
    assert data is None and "records no usable digest" in why


def test_a_path_the_manifest_does_not_record_is_said_and_another_target_is_silent(
    tmp_path: Path,
) -> None:
    cache, digest = _store(tmp_path, DATA)
    data, why = _build(cache, digest).read("t", "plots/other.csv")
    assert data is None and "records no plots/other.csv" in why
    assert _build(cache, digest).read("u", "plots/loss.csv") == (None, "")
