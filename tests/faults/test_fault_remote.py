"""A hostile remote: every malformed run-cache entry and object shape an attacker with write
access to the shared cache (or an unlucky operator) could leave there. The promise, checked
through the CLI on a real file:// remote: `mlbuild pull` / `--pull` never writes, deletes or
creates anything but cache objects and the target's declared outs; a refused entry is named
in a warning, the target is built here instead, and the result equals a clean build."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, Run

Workspace = Callable[..., Project]

PIPELINE = """
targets:
  data:raw:
    cmd: python make.py ${outs[0]}
    deps: [make.py]
    outs: [data/raw.csv]
  features:shards:
    cmd: python shard.py ${deps[0]} ${outs[0]}
    deps: [data:raw, shard.py]
    outs: [data/shards]
"""
FILES = {
    "make.py": (
        "import sys\nrows = ''.join(f'{i},{i * i}\\n' for i in range(50))\n"
        "open(sys.argv[1], 'w').write('x,y\\n' + rows)\n"
    ),
    "shard.py": (
        "import os, sys\nsrc, out = sys.argv[1:]\nos.makedirs(out + '/part', exist_ok=True)\n"
        "lines = open(src).read().splitlines()[1:]\n"
        "for i in range(3):\n"
        "    open(f'{out}/part/{i}.csv', 'w').write('\\n'.join(lines[i::3]) + '\\n')\n"
    ),
}
OUTS = ["data/raw.csv", "data/shards/part/0.csv", "data/shards/part/2.csv"]
SOURCES = {"mlbuild.yaml", "make.py", "shard.py"}


def _tree(root: Path) -> dict[str, bytes]:
    """Every file and link under ``root`` but mlbuild's own state, with its bytes."""
    found: dict[str, bytes] = {}
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".mlbuild"]
        for name in files:
            full = Path(dirpath, name)
            rel = full.relative_to(root).as_posix()
            found[rel] = os.readlink(full).encode() if full.is_symlink() else full.read_bytes()
    return found


def _build(p: Project, *args: str) -> Run:
    """A --json build that may fail; its warnings are in ``said``."""
    return p.mlbuild("--json", *args)


def _said(run: Run) -> str:
    return run.out + run.err


def _run_file(remote: Path, key: str) -> Path:
    hexk = key.split(":", 1)[1]
    return remote / "runs" / hexk[:2] / (hexk[2:] + ".json")


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built and pushed once per module: a workspace ``ws`` and its file:// ``remote``."""
    base = tmp_path_factory.mktemp("origin")
    (base / "ws").mkdir()
    for rel, text in FILES.items():
        (base / "ws" / rel).write_text(text)
    (base / "ws" / "mlbuild.yaml").write_text(PIPELINE + f"remote: file://{base / 'remote'}\n")
    run = Project(base / "ws").build("--push")
    assert run.code == 0, run.err
    return base


@pytest.fixture
def pushed(origin: Path, tmp_path: Path) -> tuple[Project, Path, dict[str, Any]]:
    """A copy of the origin (workspace, its cache and the remote it pushed to), and its lock."""
    shutil.copytree(origin, tmp_path, symlinks=True, dirs_exist_ok=True)
    remote = tmp_path / "remote"
    p = Project(tmp_path / "ws")
    p.write("mlbuild.yaml", PIPELINE + f"remote: file://{remote}\n")
    return p, remote, json.loads(p.read("mlbuild.lock"))["targets"]


def _clone(p: Project, dest: Path) -> Project:
    dest.mkdir()
    for rel in SOURCES:
        shutil.copy(p.root / rel, dest / rel)
    return Project(dest)


def _victim(tmp_path: Path) -> Path:
    """A read-only file outside every workspace: nothing may delete or change it."""
    victim = tmp_path / "victim" / "precious.txt"
    victim.parent.mkdir()
    victim.write_text("do not touch\n")
    victim.chmod(0o444)
    return victim


# Each case rewrites the remote run-cache entry of one target (``entry`` is its JSON, the
# victim's absolute path and the clone's root are given). All must be refused.
Mutation = Callable[[dict[str, Any], Path, Path], None]


def _set_out(field: str, value: object) -> Mutation:
    def mutate(entry: dict[str, Any], victim: Path, clone: Path) -> None:
        entry["outs"][0][field] = value

    return mutate


def _xxh_to_victim(entry: dict[str, Any], victim: Path, clone: Path) -> None:
    entry["outs"][0]["xxh"] = "xxh3-128:xx" + str(victim)


def _xxh_to_missing_path(entry: dict[str, Any], victim: Path, clone: Path) -> None:
    entry["outs"][0]["xxh"] = "xxh3-128:xx" + str(victim.parent / "new" / "deeper" / "f")


def _xxh_climbs(entry: dict[str, Any], victim: Path, clone: Path) -> None:
    entry["outs"][0]["xxh"] = "xxh3-128:ab/../../../../" + "0" * 20


def _path(rel: str) -> Mutation:
    return _set_out("path", rel)


def _absolute_out(entry: dict[str, Any], victim: Path, clone: Path) -> None:
    entry["outs"][0]["path"] = str(victim)


def _extra_out(rel: str, executable: bool) -> Mutation:
    def mutate(entry: dict[str, Any], victim: Path, clone: Path) -> None:
        extra = dict(entry["outs"][0])
        extra.update(path=rel, executable=executable)
        entry["outs"].append(extra)

    return mutate


def _duplicate_out(entry: dict[str, Any], victim: Path, clone: Path) -> None:
    entry["outs"].append(dict(entry["outs"][0]))


def _no_outs(entry: dict[str, Any], victim: Path, clone: Path) -> None:
    entry["outs"] = []


def _manifest_climbs(entry: dict[str, Any], victim: Path, clone: Path) -> None:
    entry["manifest"] = "sha256:../../../../victim/precious"


def _outs_not_list(entry: dict[str, Any], victim: Path, clone: Path) -> None:
    entry["outs"] = {"path": "data/raw.csv"}


CASES: dict[str, Mutation] = {
    "xxh is an absolute path": _xxh_to_victim,
    "xxh leads to a missing path": _xxh_to_missing_path,
    "xxh climbs with ..": _xxh_climbs,
    "xxh too short": _set_out("xxh", "xxh3-128:abcd"),
    "xxh too long": _set_out("xxh", "xxh3-128:" + "a" * 33),
    "xxh upper-case hex": _set_out("xxh", "xxh3-128:" + "A" * 32),
    "xxh of another algorithm": _set_out("xxh", "md5:" + "a" * 32),
    "xxh not a string": _set_out("xxh", 12),
    "sha256 malformed": _set_out("sha256", "sha256:../../x"),
    "size negative": _set_out("size", -1),
    "size a boolean": _set_out("size", True),
    "type unknown": _set_out("type", "link"),
    "path absolute": _absolute_out,
    "path climbs": _path("../outside.csv"),
    "path with a dot segment": _path("data/./raw.csv"),
    "path is the workspace": _path("."),
    "path undeclared (a git hook)": _path(".git/hooks/pre-commit"),
    "path undeclared (a source file)": _path("make.py"),
    "an extra git hook": _extra_out(".git/hooks/pre-commit", True),
    "an extra source file": _extra_out("make.py", False),
    "an out listed twice": _duplicate_out,
    "a declared out left out": _no_outs,
    "manifest id climbs": _manifest_climbs,
    "outs not a list": _outs_not_list,
    "unknown field": _set_out("mode", "0777"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_run_cache_entry_is_refused_and_nothing_else_is_touched(
    pushed: tuple[Project, Path, dict[str, Any]], tmp_path: Path, case: str
) -> None:
    p, remote, lock = pushed
    victim = _victim(tmp_path)
    q = _clone(p, tmp_path / "clone")
    run_file = _run_file(remote, lock["data:raw"]["key"])
    entry = json.loads(run_file.read_text())
    CASES[case](entry, victim, q.root)
    run_file.write_text(json.dumps(entry))

    run = _build(q, "--pull")

    assert run.code == 0, run.err
    assert "refused" in _said(run), _said(run)  # the user is told, naming the entry
    assert "data:raw: refused remote runs/" in _said(run)
    assert victim.read_text() == "do not touch\n"
    assert not (victim.parent / "new").exists()
    assert sorted(_tree(q.root)) == sorted([*SOURCES, "mlbuild.lock", *_all_outs(p)])
    assert q.outputs(OUTS) == p.outputs(OUTS)  # built here, equal to the clean build
    assert "data:raw" in run.ran  # it ran instead of restoring
    assert not (q.root / ".git").exists()
    # A refused entry is never copied into the local cache.
    assert not _run_file(q.root / ".mlbuild" / "cache", lock["data:raw"]["key"]).exists() or (
        json.loads(_run_file(q.root / ".mlbuild" / "cache", lock["data:raw"]["key"]).read_text())
        != entry
    )


def _all_outs(p: Project) -> list[str]:
    return sorted(rel for rel in _tree(p.root) if rel not in SOURCES and rel != "mlbuild.lock")


def test_a_read_only_victim_named_by_a_digest_survives_cache_verify_and_gc(
    pushed: tuple[Project, Path, dict[str, Any]], tmp_path: Path
) -> None:
    p, remote, lock = pushed
    victim = _victim(tmp_path)
    run_file = _run_file(remote, lock["data:raw"]["key"])
    entry = json.loads(run_file.read_text())
    _xxh_to_victim(entry, victim, p.root)
    run_file.write_text(json.dumps(entry))
    for args in (["cache", "verify", "--remote"], ["cache", "verify", "--remote", "--repair"]):
        run = p.mlbuild(*args)
        assert run.code in (0, 6), run.err
        assert "Traceback" not in run.err
    run = p.mlbuild("gc", "--remote")
    assert run.code == 0, run.err
    assert victim.read_text() == "do not touch\n"


def _tree_object(root: Path, digest: str) -> Path:
    hexd = digest.split(":", 1)[1]
    return root / "objects" / hexd[:2] / hexd[2:]


def _swap_two_digests(path: Path) -> None:
    """Corrupt a tree object the way the campaign did: two entries' digests swapped."""
    tree = json.loads(path.read_bytes())
    tree[0][1], tree[1][1] = tree[1][1], tree[0][1]
    path.chmod(0o644)
    path.write_text(json.dumps(tree, separators=(",", ":")))


def test_a_corrupt_local_tree_is_never_restored(workspace: Workspace, tmp_path: Path) -> None:
    p = workspace(PIPELINE, FILES)
    assert p.build().code == 0
    clean = p.outputs(OUTS)
    tree = json.loads(p.read("mlbuild.lock"))["targets"]["features:shards"]["outs"][0]["xxh"]
    _swap_two_digests(_tree_object(p.root / ".mlbuild" / "cache", tree))
    shutil.rmtree(p.root / "data" / "shards")

    run = _build(p)

    assert run.code == 0, run.err
    assert "corrupt tree object" in _said(run), _said(run)
    assert "features:shards" in run.ran  # rebuilt, not restored from the bad tree
    assert p.outputs(OUTS) == clean
    assert p.mlbuild("cache", "verify").code == 0  # the bad tree was dropped, a good one stored


def test_a_corrupt_remote_tree_is_refused_on_pull(
    pushed: tuple[Project, Path, dict[str, Any]], tmp_path: Path
) -> None:
    p, remote, lock = pushed
    _swap_two_digests(_tree_object(remote, lock["features:shards"]["outs"][0]["xxh"]))
    q = _clone(p, tmp_path / "clone")

    run = _build(q, "--pull")

    assert run.code == 0, run.err
    assert "(tree of data/shards) is corrupt" in _said(run), _said(run)
    assert "features:shards" in run.ran
    assert q.outputs(OUTS) == p.outputs(OUTS)


def test_push_never_uploads_a_corrupt_object(workspace: Workspace, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    p = workspace(PIPELINE + f"remote: file://{remote}\n", FILES)
    assert p.build().code == 0
    raw = json.loads(p.read("mlbuild.lock"))["targets"]["data:raw"]["outs"][0]["xxh"]
    obj = _tree_object(p.root / ".mlbuild" / "cache", raw)
    obj.chmod(0o644)
    obj.write_text("x,y\n0,666\n")  # same name, other bytes

    run = p.mlbuild("push")

    assert run.code == 1, run.err
    assert "Traceback" not in run.err
    assert not _tree_object(remote, raw).exists()


def test_a_lock_entry_missing_a_declared_out_does_not_make_it_fresh(
    workspace: Workspace,
) -> None:
    p = workspace(
        """
targets:
  two:
    cmd: echo a > ${outs[0]} && echo b > ${outs[1]}
    outs: [a.txt, b.txt]
""",
        {},
    )
    assert p.build().code == 0
    lock = json.loads(p.read("mlbuild.lock"))
    lock["targets"]["two"]["outs"] = [
        o for o in lock["targets"]["two"]["outs"] if o["path"] == "a.txt"
    ]
    p.write("mlbuild.lock", json.dumps(lock, indent=2))
    p.path("b.txt").unlink()

    assert p.mlbuild("-q").code == 1
    status = p.mlbuild("status")
    assert "b.txt" in status.out, status.out
    run = p.build()
    assert run.code == 0, run.err
    assert p.read("b.txt") == "b\n"


@pytest.mark.parametrize(
    "damage",
    [
        "not json",
        '{"version": 1, "targets": {"two": {"key": "xxh3-128:../x", "components": {}, '
        '"outs": []}}}',
        '{"version": 1, "targets": []}',
        "[1, 2]",
    ],
)
def test_a_damaged_lock_file_is_a_one_line_error(workspace: Workspace, damage: str) -> None:
    p = workspace("targets:\n  two:\n    cmd: echo a > ${outs[0]}\n    outs: [a.txt]\n", {})
    p.write("mlbuild.lock", damage)
    run = _build(p)
    assert run.code == 2, run.err
    assert "mlbuild.lock is corrupt" in run.err
    assert "Traceback" not in run.err
    assert len(run.err.strip().splitlines()) == 1


def test_an_out_edited_while_its_consumer_runs_is_not_recorded(workspace: Workspace) -> None:
    """The consumer reads a.txt, and a.txt changes before it finishes (here the consumer's
    own command appends to it, as a concurrent editor would): b must not be recorded as
    built from the old a."""
    p = workspace(
        """
targets:
  a:
    cmd: echo one > ${outs[0]}
    outs: [a.txt]
  b:
    cmd: cat ${deps[0]} > ${outs[0]} && echo two >> ${deps[0]}
    deps: [a]
    outs: [b.txt]
""",
        {},
    )
    run = _build(p)
    assert "input(s) changed while it ran (a.txt)" in _said(run), _said(run)
    assert "b" not in p.lock_entries()
    assert p.mlbuild("-q").code == 1  # never "fresh" with the wrong bytes
    again = p.build()
    assert again.code == 0
    assert again.restored == ["a"]  # a's out no longer matches its record: restored first
    assert again.ran == ["b"]
    assert p.read("b.txt") == "one\n"


def test_a_directory_out_with_a_symlink_leading_out_is_refused(
    workspace: Workspace, tmp_path: Path
) -> None:
    secret = tmp_path / "id_key"
    secret.write_text("PRIVATE-KEY-BYTES\n")
    secret.chmod(0o600)
    p = workspace(
        f"""
targets:
  leak:
    cmd: mkdir -p ${{outs[0]}} && echo ok > ${{outs[0]}}/a && ln -s {secret} ${{outs[0]}}/key
    outs: [d]
  inside:
    cmd: mkdir -p ${{outs[0]}} && echo ok > ${{outs[0]}}/a && ln -s ../src.txt ${{outs[0]}}/b
    outs: [e]
""",
        {"src.txt": "in the workspace\n"},
    )
    run = _build(p, "-k")
    assert run.code == 1, run.err
    assert "d/key is a symlink leading outside the workspace" in _said(run), _said(run)
    assert "leak" not in p.lock_entries()
    assert "inside" in p.lock_entries()
    cache = p.root / ".mlbuild" / "cache"
    assert not any(f.is_file() and b"PRIVATE-KEY-BYTES" in f.read_bytes() for f in cache.rglob("*"))


def test_a_link_inside_the_workspace_is_stored_and_restored_as_a_link(
    workspace: Workspace,
) -> None:
    p = workspace(
        """
targets:
  inside:
    cmd: mkdir -p ${outs[0]} && echo ok > ${outs[0]}/a && ln -s ../src.txt ${outs[0]}/b
    outs: [e]
""",
        {"src.txt": "in the workspace\n"},
    )
    assert _build(p).code == 0
    p.write("src.txt", "edited: the link is what was built, not what it points to\n")
    assert p.mlbuild("-q").code == 0  # a link is recorded as its target text: still fresh
    shutil.rmtree(p.root / "e")
    again = _build(p)
    assert again.restored == ["inside"], _said(again)
    assert os.readlink(p.root / "e" / "b") == "../src.txt"
    assert p.mlbuild("-q").code == 0
    assert p.mlbuild("audit").code == 0


def test_a_remote_link_leading_out_of_the_workspace_is_refused(
    pushed: tuple[Project, Path, dict[str, Any]], tmp_path: Path
) -> None:
    """A well-formed tree (stored under its true digest) whose link entry points out."""
    import hashlib

    from mlbuild.digest import canonical_json, hash_bytes

    p, remote, lock = pushed
    text = b"../../../victim/precious.txt"
    link = hash_bytes(text).split(":", 1)[1]
    (remote / "objects" / link[:2]).mkdir(exist_ok=True)
    (remote / "objects" / link[:2] / link[2:]).write_bytes(text)
    body = canonical_json([["evil", "xxh3-128:" + link, "l"]]).encode()
    tree = hash_bytes(body).split(":", 1)[1]
    (remote / "objects" / tree[:2]).mkdir(exist_ok=True)
    (remote / "objects" / tree[:2] / tree[2:]).write_bytes(body)
    run_file = _run_file(remote, lock["features:shards"]["key"])
    entry = json.loads(run_file.read_text())
    sha_tree = canonical_json([["evil", "sha256:" + hashlib.sha256(text).hexdigest(), "l"]])
    entry["outs"][0].update(
        xxh="xxh3-128:" + tree,
        sha256="sha256:" + hashlib.sha256(sha_tree.encode()).hexdigest(),
        size=len(text),
    )
    run_file.write_text(json.dumps(entry))
    q = _clone(p, tmp_path / "clone")

    run = _build(q, "--pull")

    assert run.code == 0, _said(run)
    assert "leads outside the workspace" in _said(run), _said(run)
    assert run.ran == ["features:shards"]
    assert not (q.root / "data" / "shards" / "evil").is_symlink()
    assert q.outputs(OUTS) == p.outputs(OUTS)


@pytest.fixture
def deep_cleanup(tmp_path: Path) -> Iterator[None]:
    """pytest's own clean-up of old tmp dirs uses shutil.rmtree, which recurses once per
    level: remove this test's 1100-deep trees without recursion."""
    yield
    from mlbuild.store.cache import remove_tree

    remove_tree(str(tmp_path))


def test_a_deeply_nested_directory_out_is_built_and_restored(
    workspace: Workspace, deep_cleanup: None
) -> None:
    p = workspace(
        """
targets:
  deep:
    cmd: python deep.py ${outs[0]}
    deps: [deep.py]
    outs: [deep]
""",
        {
            "deep.py": "import os, sys\n"
            "os.mkdir(sys.argv[1])\nos.chdir(sys.argv[1])\n"
            "for _ in range(1100):\n    os.mkdir('d')\n    os.chdir('d')\n"
            "open('leaf', 'w').write('x')\n"
        },
    )
    run = _build(p)
    assert run.code == 0, _said(run)
    restored = p.root / "deep" / os.path.join(*(["d"] * 1100)) / "leaf"
    assert restored.read_text() == "x"
    os.rename(p.root / "deep", p.root / "elsewhere")  # (shutil.rmtree would recurse)
    again = _build(p)
    assert again.code == 0, _said(again)
    assert again.restored == ["deep"]
    assert restored.read_text() == "x"
    for _ in range(2):  # the second one drops the first one's aside copy: deep too
        forced = _build(p, "-B", "deep")
        assert forced.code == 0, _said(forced)
        assert forced.ran == ["deep"]


def test_a_damaged_state_memo_is_rebuilt_silently(workspace: Workspace) -> None:
    p = workspace("targets:\n  t:\n    cmd: echo a > ${outs[0]}\n    outs: [a.txt]\n", {})
    assert p.build().code == 0
    for damage in (
        "[]",
        '{"version": 1, "files": [], "imports": {}}',
        '{"version": 1, "files": {"a.txt": [1, 2]}, "imports": {"x": 5}}',
        '{"version": 1, "files": {"a.txt": ["x", 1, 2, 3, 4, "xxh3-128:zz", null]}}',
        "\xff\xfe garbage",
    ):
        p.write(".mlbuild/state.json", damage)
        run = p.build()
        assert run.code == 0, (damage, run.err)
        assert run.ran == [], damage  # re-hashed, still fresh


def test_gc_removes_leftovers_of_interrupted_writes(
    pushed: tuple[Project, Path, dict[str, Any]],
) -> None:
    p, remote, _ = pushed
    objects = p.root / ".mlbuild" / "cache" / "objects" / "ab"
    objects.mkdir(parents=True, exist_ok=True)
    (objects / ".tmp-dead").write_text("half an object")
    (p.root / ".mlbuild" / "manifests" / ".tmp-x.part").write_text("half")
    (p.root / "data" / ".mlbuild-restore-abc").write_text("half a restore")
    (p.root / ".tmp-lock.part").write_text('{"half a lock')  # atomic_write of mlbuild.lock
    (p.root / ".tmp-mine").write_text("a user's file that only looks like one")
    old = remote / "objects" / "ab"
    old.mkdir(parents=True, exist_ok=True)
    stale = old / "cdef.tmp-0123"
    stale.write_text("dead upload")
    os.utime(stale, (1_000_000, 1_000_000))
    fresh = old / "cdef.tmp-4567"
    fresh.write_text("an upload in flight")

    run = p.mlbuild("gc")
    assert run.code == 0, run.err
    assert "4 leftover temporary files" in run.out, run.out
    assert not (objects / ".tmp-dead").exists()
    assert not (p.root / ".tmp-lock.part").exists()
    assert (p.root / ".tmp-mine").exists()
    assert not (p.root / "data" / ".mlbuild-restore-abc").exists()
    run = p.mlbuild("gc", "--remote")
    assert run.code == 0, run.err
    assert not stale.exists()
    assert fresh.exists()  # another machine may be uploading it right now
    assert p.mlbuild("cache", "verify").code == 0


def test_an_unreadable_cache_object_is_reported_not_a_traceback(workspace: Workspace) -> None:
    p = workspace("targets:\n  t:\n    cmd: echo a > ${outs[0]}\n    outs: [a.txt]\n", {})
    assert p.build().code == 0
    obj = next(f for f in (p.root / ".mlbuild/cache/objects").rglob("*") if f.is_file())
    obj.chmod(stat.S_IWUSR)
    obj.unlink()
    obj.symlink_to(obj.parent / "gone")  # unreadable, even for root
    run = p.mlbuild("cache", "verify")
    assert run.code == 6, run.err
    assert "Traceback" not in run.err
    assert "unreadable" in run.out, run.out
