"""``cache: {link: [...]}``: outs placed by reflink, hardlink or copy, the first that works.

With hardlink, an out and its cache object are one inode (no second copy on disk), both
read-only so that a write in place is refused instead of corrupting the cache, and
`mlbuild unprotect` gives a private copy to edit. The default stays a file of its own."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from mlbuild.digest import FileDigest, hash_file
from mlbuild.store import state as state_mod
from tests.conftest import Project

HARDLINK = "cache:\n  link: [reflink, hardlink, copy]\n"


def _project(project: Callable[[str], Project], cache: str) -> Project:
    p = project("datadir")
    p.write("mlbuild.yaml", p.read("mlbuild.yaml") + cache)
    return p


def _object(p: Project, data: bytes) -> Path:
    objects = p.path(".mlbuild/cache/objects")
    [found] = [o for o in objects.rglob("*") if o.is_file() and o.read_bytes() == data]
    return found


def _files(root: Path) -> list[Path]:
    return sorted(f for f in root.rglob("*") if f.is_file() and not f.is_symlink())


def test_hardlinked_outs_are_their_cache_objects_and_read_only(
    project: Callable[[str], Project],
) -> None:
    p = _project(project, HARDLINK)
    p.build()
    files = _files(p.path("data/images"))
    assert len(files) == 61
    for f in files:
        st = f.stat()
        assert st.st_nlink == 2 and not st.st_mode & 0o222, f
        assert _object(p, f.read_bytes()).stat().st_ino == st.st_ino  # no second copy
    assert p.path("data/images/fetch.sh").stat().st_mode & stat.S_IXUSR  # mode kept
    # Restored the same way: the objects themselves, nothing copied.
    for f in files:
        f.unlink()
    assert p.build().restored == ["data:images"]
    restored = p.path("data/images/cat/003.bin")
    assert restored.stat().st_ino == _object(p, restored.read_bytes()).stat().st_ino
    assert os.access(p.path("data/images/fetch.sh"), os.X_OK)


def test_a_write_in_place_is_refused_by_the_kernel(
    project: Callable[[str], Project],
) -> None:
    """As another user than root (root ignores modes), through a directory descriptor so
    that the test directory's own modes do not decide."""
    p = _project(project, HARDLINK)
    p.build()
    directory = os.open(p.path("data/images/cat"), os.O_RDONLY)
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, then try to append
        code = 3
        try:
            if os.getuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            os.open("003.bin", os.O_WRONLY | os.O_APPEND, dir_fd=directory)
            code = 0
        except PermissionError:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    os.close(directory)
    assert os.WEXITSTATUS(status) == 1, "the write was not refused"
    assert p.read("data/images/cat/003.bin") == "cat 3\n" * 4


def test_no_op_after_a_hardlinked_build_hashes_nothing(
    project: Callable[[str], Project], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linking changes each out's ctime: the memo takes the new one (StateMemo.restat)
    instead of hashing the whole directory again on the next build."""
    p = _project(project, HARDLINK)
    p.build()
    hashed: list[str] = []

    def counting(path: str, *, want_sha256: bool) -> FileDigest:
        hashed.append(path)
        return hash_file(path, want_sha256=want_sha256)

    monkeypatch.setattr(state_mod, "hash_file", counting)
    assert p.build().ran == []
    assert [h for h in hashed if "data/images" in h] == []


def test_unprotect_makes_private_writable_copies(project: Callable[[str], Project]) -> None:
    p = _project(project, HARDLINK)
    p.build()
    run = p.mlbuild("unprotect", "data/images")
    assert run.code == 0, run.err
    assert run.out == "unprotected data/images: 61 files made private and writable\n"
    for f in _files(p.path("data/images")):
        st = f.stat()
        assert st.st_nlink == 1 and st.st_mode & stat.S_IWUSR, f
    assert p.path("data/images/fetch.sh").stat().st_mode & stat.S_IXUSR
    assert p.build().ran == []  # the same bytes: nothing to do
    again = p.mlbuild("unprotect", "data/images/cat/003.bin")
    assert again.out == "data/images/cat/003.bin: nothing shares its bytes with the cache\n"
    # An edit now is an edit of the out, not of the cache: restored, kept aside.
    p.write("data/images/cat/003.bin", "mine\n")
    assert p.build().restored == ["data:images"]
    assert p.read("data/images/cat/003.bin") == "cat 3\n" * 4
    assert p.read(".mlbuild/aside/data__images/data/images/cat/003.bin") == "mine\n"


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("mlbuild.yaml", "mlbuild.yaml is not an out of any target"),
        ("nowhere.txt", "nowhere.txt does not exist"),
        ("../elsewhere", "../elsewhere is outside the workspace"),
    ],
)
def test_unprotect_refuses_what_is_not_an_out(
    project: Callable[[str], Project], path: str, said: str
) -> None:
    p = _project(project, HARDLINK)
    p.build()
    run = p.mlbuild("unprotect", "data/images", path)
    assert run.code == 2
    assert said in run.err
    assert p.path("data/images/cat/000.bin").stat().st_nlink == 2  # nothing touched


def test_a_refused_write_to_a_dep_says_how_to_edit_it(
    workspace: Callable[..., Project],
) -> None:
    """Root is not refused, so the command prints what a refused write prints."""
    write = (
        "import os, sys\n"
        "p = sys.argv[1]\n"
        "if not os.stat(p).st_mode & 0o200:\n"
        "    sys.exit(f'{p}: Permission denied')\n"
        "open(p, 'a').write('more')\n"
    )
    p = workspace(
        "version: 1\n"
        + HARDLINK
        + "targets:\n"
        + "  data:raw:\n    cmd: echo raw > ${outs[0]}\n    outs: [data/raw.txt]\n"
        + "  edit:\n    cmd: python edit.py ${deps[0]} && touch ${outs[0]}\n"
        + "    deps: [data:raw, edit.py]\n    outs: [edited.txt]\n",
        {"edit.py": write},
    )
    run = p.mlbuild("--json")
    assert run.code == 1
    assert (
        "edit: data/raw.txt is read-only, hardlinked to the cache (cache.link); "
        "mlbuild unprotect data/raw.txt makes it a private, writable copy"
    ) in run.out


def test_the_default_places_files_of_their_own(project: Callable[[str], Project]) -> None:
    p = project("datadir")
    p.build()
    for f in _files(p.path("data/images")):
        st = f.stat()
        assert st.st_nlink == 1 and st.st_mode & stat.S_IWUSR, f
    run = p.mlbuild("unprotect", "data/images")
    assert run.out == "data/images: nothing shares its bytes with the cache\n"


def test_a_list_without_a_kind_that_works_fails_with_the_fix(
    project: Callable[[str], Project], tmp_path: Path
) -> None:
    if _reflinks(tmp_path):
        pytest.skip("this filesystem has reflinks: link: [reflink] works here")
    p = _project(project, "cache:\n  link: [reflink]\n")
    run = p.mlbuild()
    assert run.code == 1
    assert (
        "data:images: no kind in cache.link (reflink) works between the workspace and the "
        "cache for "
    ) in run.err
    assert "add copy to cache.link in mlbuild.yaml (it works everywhere)" in run.err


@pytest.mark.parametrize(
    ("cache", "said"),
    [
        ("cache:\n  link: [symlink]\n", "cache.link 'symlink' is not a kind of link"),
        ("cache:\n  link: [copy, copy]\n", "cache.link lists 'copy' twice"),
        ("cache:\n  link: []\n", "cache.link must be a list of reflink, hardlink, copy"),
        ("cache:\n  links: [copy]\n", "links"),
    ],
)
def test_a_bad_link_list_is_a_config_error(
    project: Callable[[str], Project], cache: str, said: str
) -> None:
    p = _project(project, cache)
    run = p.mlbuild()
    assert run.code == 2
    assert said in run.err


def _reflinks(directory: Path) -> bool:
    import fcntl

    a, b = directory / "reflink-probe-a", directory / "reflink-probe-b"
    a.write_bytes(b"probe")
    with open(a, "rb") as src, open(b, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), 0x40049409, src.fileno())
        except OSError:
            return False
    return True


_REFLINK_DIR = os.environ.get("MLBUILD_TEST_REFLINK_DIR", "")


@pytest.mark.skipif(
    not _REFLINK_DIR,
    reason="no reflink filesystem: set MLBUILD_TEST_REFLINK_DIR to a directory on XFS or "
    "btrfs (.ci/run mounts one where it may)",
)
def test_reflinked_outs_share_extents_and_stay_files_of_their_own(tmp_path: Path) -> None:
    import shutil

    from tests.conftest import PROJECTS

    root = Path(_REFLINK_DIR) / f"ws-{os.getpid()}-{tmp_path.name}"
    shutil.copytree(PROJECTS / "datadir", root)
    try:
        p = Project(root)
        p.write("mlbuild.yaml", p.read("mlbuild.yaml") + "cache:\n  link: [reflink]\n")
        p.build()
        out = p.path("data/images/cat/019.bin")
        obj = _object(p, out.read_bytes())
        assert out.stat().st_ino != obj.stat().st_ino and out.stat().st_nlink == 1
        assert out.stat().st_mode & stat.S_IWUSR  # a file of its own: editable
        assert _shared_extents(out) and _shared_extents(obj)  # one copy on disk
        out.write_text("edited\n")
        assert obj.read_text() == "cat 19\n" * 20  # the cache is untouched
        assert p.build().restored == ["data:images"]
        assert out.read_text() == "cat 19\n" * 20 and _shared_extents(out)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _shared_extents(path: Path) -> bool:
    """Whether every extent of ``path`` is shared with another file (FIEMAP's
    FIEMAP_EXTENT_SHARED), as after a reflink."""
    import fcntl
    import struct

    head = struct.Struct("=QQLLLL")
    extent = struct.Struct("=QQQQQLLLL")
    count = 16
    buf = bytearray(head.pack(0, 2**64 - 1, 0x1, 0, count, 0) + bytes(extent.size * count))
    with open(path, "rb") as f:
        fcntl.ioctl(f.fileno(), 0xC020660B, buf)  # FS_IOC_FIEMAP, with FIEMAP_FLAG_SYNC
    mapped = head.unpack_from(buf)[3]
    flags = [extent.unpack_from(buf, head.size + i * extent.size)[5] for i in range(mapped)]
    return bool(flags) and all(flag & 0x2000 for flag in flags)


def test_a_hardlink_only_list_still_stores_code_files_by_copy(
    project: Callable[[str], Project],
) -> None:
    """Code files (stored for `explain` diffs) are never linked, so `link: [hardlink]`
    must not leave them with no kind that works: they are copied, and stay writable."""
    p = _project(project, "cache:\n  link: [hardlink]\n")
    run = p.mlbuild("--json")
    assert run.code == 0, run.err
    assert p.path("data/images/cat/000.bin").stat().st_nlink == 2
    script = p.path("make_images.py")
    assert script.stat().st_nlink == 1 and script.stat().st_mode & stat.S_IWUSR
