"""Property: after any sequence of edits and builds, a no-op build runs nothing and the
outputs equal those of a clean build of the same sources in a fresh copy."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlbuild import Outcome, Workspace

PROJECT = Path(__file__).parent.parent / "projects" / "prop"
OUTS = ["out/one.txt", "out/two.txt", "out/three.txt", "out/d/sub/y", "out/d/b"]
SOURCES = ["mlbuild.yaml", "params.yaml", "src/x.txt", "src/y.txt"]

edit = st.one_of(
    st.tuples(st.just("param"), st.sampled_from(["a", "b"]), st.integers(0, 3)),
    st.tuples(
        st.just("source"),
        st.sampled_from(["src/x.txt", "src/y.txt"]),
        st.sampled_from(["x\n", "y\n", "x\ny\n", "\n", "z\n"]),
    ),
    st.tuples(st.just("delete"), st.sampled_from(OUTS + ["out/d"]), st.just(0)),
    st.tuples(st.just("tamper"), st.sampled_from(OUTS), st.just(0)),
    st.tuples(st.just("touch"), st.sampled_from(SOURCES[1:] + OUTS), st.just(0)),
    st.tuples(st.just("build"), st.sampled_from([1, 2]), st.just(0)),
)


def _apply(root: Path, step: tuple[str, object, object]) -> None:
    kind, what, value = step
    path = root / str(what)
    if kind == "param":
        lines = dict(line.split(": ") for line in (root / "params.yaml").read_text().splitlines())
        lines[str(what)] = str(value)
        (root / "params.yaml").write_text("".join(f"{k}: {v}\n" for k, v in sorted(lines.items())))
    elif kind == "source":
        path.write_text(str(value))
    elif kind == "delete" and path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    elif kind == "tamper" and path.exists():
        path.write_text("tampered\n")
    elif kind == "touch" and path.exists():
        os.utime(path)
    elif kind == "build":
        assert Workspace(root).build(jobs=int(str(what))).ok


def _outputs(root: Path) -> dict[str, bytes]:
    return {p: (root / p).read_bytes() for p in OUTS}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edit, min_size=1, max_size=8))
def test_any_edit_sequence_ends_fresh_and_equal_to_a_clean_build(
    steps: list[tuple[str, object, object]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work, clean = Path(tmp) / "work", Path(tmp) / "clean"
        shutil.copytree(PROJECT, work)
        for step in steps:
            _apply(work, step)
        assert Workspace(work).build(jobs=2).ok
        noop = Workspace(work).build(jobs=2)
        assert [t.target for t in noop.targets if t.outcome is not Outcome.FRESH] == []
        clean.mkdir()
        for rel in SOURCES:
            (clean / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / rel, clean / rel)
        assert Workspace(clean).build(jobs=1).ok
        assert _outputs(work) == _outputs(clean)
