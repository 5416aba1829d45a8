"""Property: any interleaving of edits, builds, restores and corruptions of mlbuild's own
files leaves the workspace equal to a clean build of the current sources, or the problem is
reported; a corrupt cache object never reaches the workspace.

The steps (hypothesis draws and shrinks them): edit a source or a param (a few versions
each, so going back to an old one restores from the run cache), build through the CLI,
delete an out, replace an out (other bytes, or one byte flipped in place: same size, same
inode), add a stray file to a directory out, flip a byte in or truncate a local cache
object (any one, or the one a recorded out restores from, deleting that out), delete or
garble ``.mlbuild/state.json``, garble a run-cache entry. After every build: exit 0, no
traceback, every out and the lock file's entries equal those of a clean build of the same
sources in a fresh directory (cached by source state), and a rotten object the build found
and dropped is named in its output. At the end:
``mlbuild -q`` exits 0, and ``mlbuild cache verify`` exits 0, or 6 naming only objects the
test corrupted that are still corrupt or were dropped.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from mlbuild import Workspace
from tests.conftest import Project, Run

CONFIG = """\
version: 1
params: params.yaml
targets:
  t:one:
    cmd: (cat src/x.txt; echo a=${params.a}) > ${outs[0]}
    deps: [src/x.txt]
    params: [a]
    outs: [out/one.txt]
  t:dir:
    cmd: mkdir -p ${outs[0]}/sub && cp src/y.txt ${outs[0]}/sub/y && echo ${params.b} > ${outs[0]}/b
    deps: [src/y.txt]
    params: [b]
    outs: [out/d]
  t:two:
    cmd: cat ${deps[0]} ${deps[1]}/sub/y ${deps[1]}/b > ${outs[0]}
    deps: [t:one, t:dir]
    outs: [out/two.txt]
  t:three:
    cmd: grep -c . ${deps[0]} > ${outs[0]}
    deps: [t:two]
    outs: [out/three.txt]
"""
# Each source's versions; a state is one index per source (version 0 to start with).
VERSIONS: dict[str, tuple[str, ...]] = {
    "src/x.txt": ("x\n", "x\ny\n", "z\n"),
    "src/y.txt": ("y\n", "y\nw\n", "\n"),
    "params.yaml": ("a: 1\nb: 1\n", "a: 2\nb: 1\n", "a: 1\nb: 2\n", "a: 2\nb: 2\n"),
}
OUT_FILES = ("out/one.txt", "out/two.txt", "out/three.txt", "out/d/sub/y", "out/d/b")
OUTS = ("out/one.txt", "out/two.txt", "out/three.txt", "out/d")
GARBAGE = (b"", b"\xff\xfe\x00 not json", b"[]", b"{}", b'{"version": 1, "outs": "x"}')

State = tuple[int, ...]
Step = tuple[str, int, int]

step = st.one_of(
    st.tuples(st.just("edit"), st.integers(0, len(VERSIONS) - 1), st.integers(0, 3)),
    st.tuples(st.just("build"), st.integers(1, 2), st.just(0)),
    st.tuples(st.just("build"), st.integers(1, 2), st.just(0)),  # twice as likely
    st.tuples(st.just("delete-out"), st.integers(0, len(OUTS) - 1), st.just(0)),
    st.tuples(st.just("replace-out"), st.integers(0, len(OUT_FILES) - 1), st.integers(0, 1)),
    st.tuples(st.just("stray-file"), st.just(0), st.just(0)),
    st.tuples(st.just("flip-object"), st.integers(0, 63), st.integers(0, 1023)),
    st.tuples(st.just("rot-out"), st.integers(0, 63), st.integers(0, 1023)),
    st.tuples(st.just("truncate-object"), st.integers(0, 63), st.integers(0, 1)),
    st.tuples(st.just("state"), st.integers(0, len(GARBAGE)), st.just(0)),
    st.tuples(st.just("garble-run"), st.integers(0, 63), st.integers(0, len(GARBAGE) - 1)),
)


class Clean:
    """Clean builds of each source state, each made once in its own fresh directory."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.done: dict[State, tuple[dict[str, bytes], dict[str, Any]]] = {}

    def of(self, state: State) -> tuple[dict[str, bytes], dict[str, Any]]:
        if state not in self.done:
            root = self.base / "-".join(map(str, state))
            _write_sources(root, state)
            assert Workspace(root).build(jobs=1).ok
            self.done[state] = (_outs(root), _lock(root))
        return self.done[state]


@pytest.fixture(scope="module")
def clean() -> Iterator[Clean]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Clean(Path(tmp))


def _write_sources(root: Path, state: State) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mlbuild.yaml").write_text(CONFIG)
    for (rel, versions), i in zip(VERSIONS.items(), state, strict=True):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(versions[i])


def _outs(root: Path) -> dict[str, bytes]:
    """Every file under out/ with its bytes (a stray or leftover file counts too)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / "out").rglob("*"))
        if p.is_file()
    }


def _lock(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "mlbuild.lock").read_text())["targets"]
    return data


def _cache_files(root: Path, kind: str) -> list[Path]:
    base = root / ".mlbuild" / "cache" / kind
    return sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))


def _object_rel(digest: str) -> str:
    hexd = digest.split(":", 1)[1]
    return f"{hexd[:2]}/{hexd[2:]}"


def _overwrite(path: Path, data: bytes) -> None:
    """Write ``data`` over a (read-only) file, keeping its mode, as bit rot or a careless
    tool would."""
    mode = stat.S_IMODE(path.stat().st_mode)
    path.chmod(mode | stat.S_IWUSR)
    with open(path, "r+b") as f:  # in place: same inode
        f.truncate(0)
        f.write(data)
    path.chmod(mode)


class Example:
    """One example: a workspace, its current source state, what the test corrupted."""

    def __init__(self, root: Path, clean: Clean) -> None:
        self.p = Project(root)
        self.clean = clean
        self.state: list[int] = [0] * len(VERSIONS)
        self.corrupted: dict[str, bytes] = {}  # cache object (relative to the cache) → bytes
        self.done: list[str] = []
        self.built = False
        self.cache = root / ".mlbuild" / "cache"
        _write_sources(root, tuple(self.state))

    def why(self) -> str:
        return "steps: " + "; ".join(self.done)

    def apply(self, s: Step) -> None:
        kind, a, b = s
        root = self.p.root
        self.done.append(f"{kind} {a} {b}")
        if kind == "edit":
            rel = list(VERSIONS)[a]
            self.state[a] = b % len(VERSIONS[rel])
            (root / rel).write_text(VERSIONS[rel][self.state[a]])
        elif kind == "build":
            self.build("-j", str(a))
        elif kind == "delete-out":
            path = root / OUTS[a]
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        elif kind == "replace-out":
            path = root / OUT_FILES[a]
            if path.is_file():
                data = path.read_bytes()
                if b and data:  # one byte flipped in place: same size, same inode
                    _overwrite(path, data[:-1] + bytes([data[-1] ^ 0x20]))
                else:
                    path.write_bytes(b"other bytes\n")
        elif kind == "stray-file":
            if (root / "out" / "d").is_dir():
                (root / "out" / "d" / "stray").write_text("not from the command\n")
        elif kind == "rot-out":
            # The cache object of a recorded out rots; with an odd b, the workspace copy is
            # deleted too, so the next build must restore it (or see the rot and rebuild).
            recorded = [o for e in _lock(root).values() for o in e["outs"]] if self.built else []
            if recorded:
                out = recorded[a % len(recorded)]
                self.corrupt(root / ".mlbuild/cache/objects" / _object_rel(out["xxh"]), "flip", b)
                if b % 2:
                    path = root / out["path"]
                    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        elif kind in ("flip-object", "truncate-object"):
            objects = _cache_files(root, "objects")
            if objects:
                self.corrupt(objects[a % len(objects)], kind.split("-")[0], b)
        elif kind == "state":
            path = root / ".mlbuild" / "state.json"
            if a == len(GARBAGE):
                path.unlink(missing_ok=True)
            elif path.exists():
                path.write_bytes(GARBAGE[a])
        elif kind == "garble-run":
            runs = _cache_files(root, "runs")
            if runs:
                _overwrite(runs[a % len(runs)], GARBAGE[b])

    def corrupt(self, obj: Path, how: str, b: int) -> None:
        """Flip one bit of byte ``b`` of a cache object, or truncate it (to half with an
        odd ``b``, else to nothing); the good bytes are kept to tell later if it is fixed."""
        if not obj.is_file():
            return
        data = obj.read_bytes()
        if how == "truncate":
            bad = data[: len(data) // 2] if b % 2 else b""
            bad = bad if bad != data else data + b"\n"
        elif data:
            i = b % len(data)
            bad = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
        else:
            bad = b"\x01"
        self.corrupted.setdefault(obj.relative_to(self.cache).as_posix(), data)
        _overwrite(obj, bad)

    def build(self, *args: str) -> Run:
        rotten = self.rotten()
        run = self.p.mlbuild("--json", *args)
        self.built = True
        assert run.code == 0 and "Traceback" not in run.err, (
            f"build exited {run.code}:\n{run.out}\n{run.err}\n{self.why()}"
        )
        # A rotten object the build found (and dropped) is reported, naming it.
        for rel in sorted(rotten - self.rotten()):
            assert f"cache object {rel} is corrupt" in run.out + run.err or (
                f"cache object {rel}: corrupt" in run.out + run.err
            ), f"{rel} was dropped silently:\n{run.out}\n{run.err}\n{self.why()}"
        outs, lock = self.clean.of(tuple(self.state))
        got = _outs(self.p.root)
        wrong = sorted(k for k in got.keys() | outs.keys() if got.get(k) != outs.get(k))
        assert got == outs, (
            f"outs differ from a clean build: {wrong}\n{run.out}\n{run.err}\n{self.why()}"
        )
        assert _lock(self.p.root) == lock, f"lock differs from a clean build\n{self.why()}"
        return run

    def still_corrupt(self) -> set[str]:
        """Objects the test corrupted that are still corrupt, or were dropped."""
        return {
            rel
            for rel, good in self.corrupted.items()
            if not (self.cache / rel).exists() or (self.cache / rel).read_bytes() != good
        }

    def rotten(self) -> set[str]:
        """Objects the test corrupted that are in the cache with their bad bytes."""
        return {rel for rel in self.still_corrupt() if (self.cache / rel).exists()}

    def finish(self) -> None:
        self.build()
        fresh = self.p.mlbuild("-q")
        assert fresh.code == 0, f"-q after a build: {fresh.code}\n{fresh.err}\n{self.why()}"
        verify = self.p.mlbuild("cache", "verify")
        bad = self.still_corrupt()
        named = set(re.findall(r"^corrupt  (\S+)", verify.out, re.M))
        said = f"cache verify exited {verify.code}:\n{verify.out}\n{verify.err}\n{self.why()}"
        assert "Traceback" not in verify.err, said
        if verify.code == 0:
            assert not self.rotten(), "cache verify missed a corrupt object\n" + said
        else:
            # A problem the test made (an object still corrupt, or one mlbuild dropped, whose
            # entries then name a missing object); nothing else is called corrupt.
            assert verify.code == 6 and bad and named <= bad, said


def _run(steps: list[Step], clean: Clean) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Example(Path(tmp) / "ws", clean)
        for s in steps:
            run.apply(s)
        run.finish()


# No shrinking in the default run: a failing example is printed as found (its steps are in
# the message), instead of minutes of shrinking past the per-test timeout.
@settings(
    max_examples=20,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(step, min_size=1, max_size=10))
# Always tried first: a rotten file object and a rotten tree object whose out must be
# restored, and a switch back to an old state with the state memo and a run-cache entry
# garbled and an out flipped in place.
@example(steps=[("build", 1, 0), ("rot-out", 1, 1), ("build", 1, 0)])
@example(steps=[("build", 1, 0), ("rot-out", 0, 1), ("build", 2, 0)])
@example(
    steps=[
        ("build", 2, 0),
        ("edit", 0, 1),
        ("build", 2, 0),
        ("edit", 0, 0),
        ("replace-out", 0, 1),
        ("state", 1, 0),
        ("garble-run", 0, 1),
        ("build", 1, 0),
    ]
)
def test_edits_builds_and_corruptions_end_equal_to_a_clean_build(
    clean: Clean, steps: list[Step]
) -> None:
    _run(steps, clean)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(step, min_size=1, max_size=25))
def test_long_runs_of_edits_builds_and_corruptions_end_equal_to_a_clean_build(
    clean: Clean, steps: list[Step]
) -> None:
    _run(steps, clean)
