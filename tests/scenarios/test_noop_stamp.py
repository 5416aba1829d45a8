"""The no-op stamp (noop.py, stamp.py): a build that found every target fresh answers the
next identical build without loading the pipeline, and *only* when nothing it looked at
changed. Each change a user (or an attacker with write access to the workspace) can make
to what decides freshness must send the build the full way, and find the target stale."""

from __future__ import annotations

import builtins
import json
import os
import time
from collections.abc import Callable, Iterator

import pytest

from mlbuild.config import loader
from tests.conftest import Project, Run

CONFIG = """\
version: 1
params: params.yaml
targets:
  data:clean:
    cmd: python src/clean.py raw.csv ${outs[0]} ${params.scale}
    deps: [raw.csv]
    outs: [out/clean.csv]
  features:all:
    cmd: cat ${deps[0]} shards/*.txt > ${outs[0]}
    deps: [data:clean, "shards/*.txt"]
    outs: [out/all.txt]
"""

FILES = {
    "params.yaml": "scale: 2\n",
    "raw.csv": "1\n2\n",
    "shards/a.txt": "a\n",
    "shards/b.txt": "b\n",
    "src/clean.py": (
        "import sys\nimport util\n"
        "try:\n    import helper_maybe  # noqa: F401\nexcept ImportError:\n    pass\n"
        "rows = open(sys.argv[1]).read().split()\n"
        "open(sys.argv[2], 'w').write(util.scaled(rows, int(sys.argv[3])))\n"
    ),
    "src/util.py": "def scaled(rows, k):\n    return ''.join(f'{int(r) * k}\\n' for r in rows)\n",
}


class Loads:
    """How many times the pipeline was loaded (0: the stamp answered)."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Loads:
    if not Project.in_process_default:
        pytest.skip(
            "counts pipeline loads in this process; MLBUILD_TEST_CLI=subprocess runs it elsewhere"
        )
    seen = Loads()
    real = loader.Loader.load

    def counting(self: loader.Loader) -> object:
        seen.count += 1
        return real(self)

    monkeypatch.setattr(loader.Loader, "load", counting)
    return seen


@pytest.fixture
def stamped(workspace: Callable[..., Project], loads: Loads) -> Project:
    """Built, then a no-op that wrote the stamp (outs older than the racy window first)."""
    p = workspace(CONFIG, FILES)
    assert p.build().ran == ["data:clean", "features:all"]
    _settle()
    assert p.build().ran == []
    assert p.path(".mlbuild/noop.json").is_file()
    return p


def _settle() -> None:
    """Wait out the stat memo's fine racy window (50 ms): only then is a file's digest
    trusted by its stat, and only then may a stamp be written."""
    time.sleep(0.12)


def _answered(p: Project, loads: Loads, *args: str) -> bool:
    """Build (must succeed, run nothing... or not); True when the stamp answered it."""
    before = loads.count
    run = p.build(*args)
    return loads.count == before and run.ran == []


def test_the_next_no_op_is_answered_from_the_stamp_with_the_same_events(
    stamped: Project, loads: Loads
) -> None:
    p = stamped
    p.path(".mlbuild/noop.json").unlink()
    before = loads.count
    full = p.mlbuild("--json")
    assert loads.count == before + 1  # the full no-op, which writes the stamp again
    fast = p.mlbuild("--json")
    assert loads.count == before + 1  # nothing loaded: the stamp answered
    assert fast.code == full.code == 0
    assert _timeless(fast) == _timeless(full)
    assert fast.outcomes("fresh") == ["data:clean", "features:all"]


def _timeless(run: Run) -> list[dict[str, object]]:
    return [{k: v for k, v in e.items() if k not in ("seconds", "time", "ts")} for e in run.events]


def _edit(rel: str, text: str) -> Callable[[Project], None]:
    return lambda p: p.write(rel, text)


def _touch_config(p: Project) -> None:
    p.write("mlbuild.yaml", CONFIG.replace("${params.scale}\n", "${params.scale} extra\n"))


# Each way the answer can change: (what is changed, the target that must then run).
CHANGES: dict[str, tuple[Callable[[Project], None], list[str]]] = {
    "a dep's bytes": (_edit("raw.csv", "1\n3\n"), ["data:clean", "features:all"]),
    "a param": (_edit("params.yaml", "scale: 3\n"), ["data:clean", "features:all"]),
    "the command": (_touch_config, ["data:clean"]),
    "a script": (_edit("src/clean.py", FILES["src/clean.py"] + "# edited\n"), ["data:clean"]),
    "a module the script imports": (
        _edit("src/util.py", FILES["src/util.py"] + "# edited\n"),
        ["data:clean"],
    ),
    "a new module that an import now resolves to": (
        _edit("src/helper_maybe.py", "X = 1\n"),
        ["data:clean"],
    ),
    "a new file the glob matches": (_edit("shards/c.txt", "c\n"), ["features:all"]),
    "an out edited": (_edit("out/all.txt", "mine\n"), ["features:all"]),
    "an out deleted": (lambda p: p.path("out/clean.csv").unlink(), ["data:clean"]),
    "the lock file": (
        lambda p: p.write(
            "mlbuild.lock", p.read("mlbuild.lock").replace('"features:all"', '"features:gone"')
        ),
        ["features:all"],
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_that_decides_freshness_goes_the_full_way(
    stamped: Project, loads: Loads, change: str
) -> None:
    p = stamped
    apply, stale = CHANGES[change]
    apply(p)
    before = loads.count
    run = p.build()
    assert loads.count == before + 1, "answered from the stamp after: " + change
    assert sorted(run.ran + run.restored) == stale


def test_the_same_bytes_rewritten_go_the_full_way_and_run_nothing(
    stamped: Project, loads: Loads
) -> None:
    """A stat that differs is no proof of a change: the full build decides (fresh), and a
    later no-op is answered from the new stamp."""
    p = stamped
    p.write("raw.csv", FILES["raw.csv"])
    assert not _answered(p, loads)
    _settle()
    assert not _answered(p, loads)  # the file was racy when the last build read it
    assert _answered(p, loads)


@pytest.mark.parametrize(
    "args", [("-B", "data:clean"), ("--force-all",), ("--set", "scale=3"), ("data:clean",)]
)
def test_other_arguments_are_not_answered_by_this_stamp(
    stamped: Project, loads: Loads, args: tuple[str, ...]
) -> None:
    before = loads.count
    p = stamped
    p.build(*args)
    assert loads.count == before + 1


def test_a_stamp_is_written_only_after_an_all_fresh_build(stamped: Project, loads: Loads) -> None:
    p = stamped
    p.write("raw.csv", "5\n")
    assert p.build().ran == ["data:clean", "features:all"]
    assert not p.path(".mlbuild/noop.json").exists()  # the old one is removed, none new
    _settle()
    assert not _answered(p, loads)
    assert _answered(p, loads)


@pytest.mark.parametrize(
    "damage",
    [
        b"not json",
        b'{"version": 1}',
        b'{"version": 99}',
    ],
)
def test_a_damaged_stamp_is_ignored(stamped: Project, loads: Loads, damage: bytes) -> None:
    p = stamped
    p.path(".mlbuild/noop.json").write_bytes(damage)
    assert not _answered(p, loads)


@pytest.mark.parametrize("field", ["files", "probes", "reads", "missing", "dirs"])
def test_a_stamp_naming_a_path_outside_the_workspace_is_refused(
    stamped: Project, loads: Loads, field: str
) -> None:
    """Never derive a path from data the strict parser did not check: a stamp pointing
    at ``../x`` (or an absolute path) is not used, even where every answer would hold."""
    p = stamped
    path = p.path(".mlbuild/noop.json")
    data = json.loads(path.read_text())
    outside = "../outside"
    if field == "files":
        data["files"][0].append(outside)
        data["files"][1] += [0, 0, 0, 0]
    elif field == "probes":
        data["probes"]["exists"] = [[outside], [False]]
    elif field == "reads":
        data["reads"][outside] = ""
    elif field == "missing":
        data["missing"].append(["/etc/passwd-not", False])
    else:
        data["dirs"].append(["a/./b", "xxh3-128:" + "0" * 32, True])
    path.write_text(json.dumps(data))
    assert not _answered(p, loads)


@pytest.fixture
def disk_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Every path passed to os.stat, os.lstat, os.scandir and open while it is active."""
    seen: set[str] = set()
    for name in ("stat", "lstat", "scandir"):
        real = getattr(os, name)

        def logged(
            path: object, *a: object, _real: Callable[..., object] = real, **k: object
        ) -> object:
            if isinstance(path, (str, os.PathLike)):
                seen.add(os.path.abspath(os.fspath(path)))
            return _real(path, *a, **k)

        monkeypatch.setattr(os, name, logged)
    real_open = builtins.open

    def logged_open(file: object, *a: object, **k: object) -> object:
        if isinstance(file, (str, os.PathLike)):
            seen.add(os.path.abspath(os.fspath(file)))
        return real_open(file, *a, **k)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "open", logged_open)
    yield seen


def test_the_stamp_covers_every_workspace_path_a_full_no_op_looks_at(
    workspace: Callable[..., Project], disk_log: set[str]
) -> None:
    """The completeness check: a probe that bypasses observe.py would be a way to a wrong
    "fresh". Every path of the workspace (outside .mlbuild/) that a full no-op build
    stats, lists or opens must be one the stamp re-checks (itself or, for a glob, the
    directory it walks)."""
    p = workspace(CONFIG, FILES)
    p.build()
    _settle()
    p.build()  # racy digests re-read: the next one is the steady full no-op
    _settle()
    os.unlink(p.path(".mlbuild/noop.json"))
    disk_log.clear()
    assert p.build().ran == []
    stamp = json.loads(p.path(".mlbuild/noop.json").read_text())
    covered = set(stamp["files"][0]) | set(stamp["reads"]) | set(stamp["reals"])
    covered |= {rel for rels, _ in stamp["probes"].values() for rel in rels}
    covered |= {m[0] for m in stamp["missing"]} | {d[0] for d in stamp["dirs"]}
    globbed = {os.path.dirname(g) for g in stamp["globs"]}
    root = str(p.root)
    looked = set()
    for full in disk_log:
        if not full.startswith(root + os.sep):
            continue
        rel = os.path.relpath(full, root)
        if rel.split(os.sep)[0] == ".mlbuild" or rel in ("mlbuild.lock.tmp",):
            continue
        looked.add(rel)
    uncovered = sorted(
        rel
        for rel in looked
        if rel not in covered
        and os.path.dirname(rel) not in globbed
        and rel not in globbed
        and not any(c.startswith(rel + os.sep) or c == rel for c in covered)
    )
    assert uncovered == [], "looked at but not re-checked by the stamp"
    assert stamp["globs"] == {"shards/*.txt": ["shards/a.txt", "shards/b.txt"]}


def test_a_directory_out_is_checked_by_its_tree_record_reading_no_file(
    project: Callable[[str], Project], loads: Loads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """datadir: a 61-file directory out. The stamp's check walks it (stats only); an edited
    file inside sends the build the full way, which reads that file once, not twice."""
    from mlbuild.digest import FileDigest, hash_file
    from mlbuild.store import state as state_mod

    p = project("datadir")
    p.build()
    _settle()
    p.build()
    assert p.path(".mlbuild/noop.json").is_file()
    assert _answered(p, loads)
    hashed: list[str] = []

    def counting(path: str, *, want_sha256: bool) -> FileDigest:
        hashed.append(path)
        return hash_file(path, want_sha256=want_sha256)

    monkeypatch.setattr(state_mod, "hash_file", counting)
    p.write("data/images/cat/003.bin", "my edit\n")
    assert p.build().restored == ["data:images"]
    assert hashed == [str(p.path("data/images/cat/003.bin"))]


@pytest.mark.parametrize(
    "digest", ["xxh3-128:" + "0" * 32, "xxh3-128:zz", "sha256:" + "0" * 64, ""]
)
def test_a_stamp_naming_another_digest_for_a_directory_is_not_answered(
    project: Callable[[str], Project], loads: Loads, digest: str
) -> None:
    """The stamp's writer does not walk a directory again: the next check compares the
    walk with the tree record and the record's digest with the stamp's. A stamp naming
    another digest (well formed or not) for the directory goes the full way, which finds
    the out fresh and writes a stamp with the right one."""
    p = project("datadir")
    p.build()
    _settle()
    p.build()
    path = p.path(".mlbuild/noop.json")
    data = json.loads(path.read_text())
    right = data["dirs"][0][1]
    data["dirs"][0][1] = digest
    path.write_text(json.dumps(data))
    before = loads.count
    assert p.build().ran == []
    assert loads.count == before + 1
    assert json.loads(path.read_text())["dirs"][0][1] == right


def test_the_build_that_writes_the_stamp_walks_each_directory_once(
    project: Callable[[str], Project], loads: Loads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """datadir: the full no-op over a directory out walks it once (its decision), not a
    second time to check the stamp it writes: at 100,000 files a walk is ~0.5 s."""
    from mlbuild.digest import PackedWalk, walk_packed
    from mlbuild.store import state as state_mod

    p = project("datadir")
    p.build()
    _settle()
    walks: list[str] = []

    def counting(
        root: str, *, confine: str | None = None, window: Callable[[int], int] | None = None
    ) -> PackedWalk:
        walks.append(os.path.relpath(root, p.root))
        return walk_packed(root, confine=confine, window=window)

    monkeypatch.setattr(state_mod, "walk_packed", counting)
    assert p.build().ran == []
    assert p.path(".mlbuild/noop.json").is_file()
    assert walks and sorted(walks) == sorted(set(walks)), walks


def test_a_directory_changed_after_the_build_looked_is_not_answered_fresh(
    project: Callable[[str], Project], loads: Loads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file of a directory out edited after the full no-op walked it, before the stamp
    is written: the stamp is written (its directory check is the next build's walk), and
    that walk catches the edit: the next build goes the full way and restores the out."""
    from mlbuild import noop

    p = project("datadir")
    p.build()
    _settle()
    real = noop.keep

    def edit_then_keep(*args: object) -> None:
        p.write("data/images/cat/003.bin", "my edit\n")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(noop, "keep", edit_then_keep)
    assert p.build().ran == []
    monkeypatch.setattr(noop, "keep", real)
    assert p.path(".mlbuild/noop.json").is_file()
    before = loads.count
    assert p.build().restored == ["data:images"]
    assert loads.count == before + 1
    assert p.read("data/images/cat/003.bin") != "my edit\n"


def test_an_out_swapped_for_a_link_leading_out_goes_the_full_way(
    stamped: Project, loads: Loads, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Same bytes, but the out is now a symlink out of the workspace: the link probe the
    loader made differs, so the full build runs and refuses the out, as it would have
    without a stamp (exit 2, a config error)."""
    p = stamped
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "all.txt"
    elsewhere.write_text(p.read("out/all.txt"))
    p.path("out/all.txt").unlink()
    p.path("out/all.txt").symlink_to(elsewhere)
    before = loads.count
    run = p.mlbuild("--json")
    assert loads.count == before + 1
    assert run.code == 2, run.err  # a config error, as without a stamp
    assert "'out/all.txt' is outside the workspace (through a symlink)" in run.err
