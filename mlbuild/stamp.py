"""The no-op stamp: a build that found every target fresh, and everything it looked at.

Format of ``.mlbuild/noop.json`` (version 1; anything else is ignored and rewritten)::

    {"version": 1,
     "key": "<xxh3 of the invocation: config, lock, targets asked, options, mlbuild>",
     "order": ["target", ...], "jobs": N,
     "probes": {"exists"|"lexists"|"isfile"|"isdir"|"islink": [["<rel>", ...], [answer, ...]]},
     "reals": {"<rel>": "<realpath>"}, "globs": {"<pattern>": ["<rel>", ...]},
     "specs": {"<module>": true|false}, "packages": {"<dist>": "<version>"},
     "reads": {"<rel>": "<xxh3 of its bytes>" | ""},
     "files": [["<rel>", ...], [ino, size, mtime_ns, ctime_ns, ...]],
     "dirs": [["<rel>", "<xxh3 tree digest>", out], ...], "missing": [["<rel>", out], ...]}

The next build with the same key (`Stamp.holds`) asks each question again: the probes and
real paths, the globs (walked again), the installed modules and package versions, the
files read whole (config, params, lock: read and hashed again), each file digest by its
stat (the stat memo's rule: recorded only when the memo's entry was trusted, outside its
racy window), each directory through the stat memo and its tree record, each missing path
still missing. Only when every answer is the same is the build answered from the stamp:
then nothing it depends on differs from the build that wrote it, which loaded the whole
pipeline and decided every target.

A stamp is only a cache: one that fails the strict parser here (a path not relative and
normalized, a field of the wrong type) is ignored, and the build takes the full path. It is
written only after the same check passes against the workspace as the build leaves it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from dataclasses import dataclass
from typing import Any

from .digest import canonical_json, hash_bytes
from .errors import MlbuildError
from .observe import Observer, Probe, installed
from .store.records import XXH_PATTERN, RecordError, check_relpath
from .store.state import StateMemo

__all__ = ["Stamp", "code_identity", "invocation_key"]

STAMP_VERSION = 1


def code_identity() -> str:
    """The mlbuild that decided: its version, Python's, and the size and mtime of every
    module of the package (an edited checkout decides anew)."""
    import mlbuild

    base = os.path.dirname(os.path.abspath(mlbuild.__file__))
    stats: list[tuple[str, int, int]] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".py"):
                st = os.stat(os.path.join(dirpath, name))
                stats.append((os.path.join(dirpath, name), st.st_size, st.st_mtime_ns))
    return hash_bytes(repr((mlbuild.__version__, sys.version, sys.prefix, stats)).encode())


def invocation_key(parts: dict[str, Any]) -> str:
    """The digest of what a build was asked (``parts``) and of the mlbuild answering."""
    return hash_bytes(canonical_json({"asked": parts, "mlbuild": code_identity()}).encode())


def _rel(value: Any, where: str) -> str:
    return "." if value == "." else check_relpath(value, where)


def _full(root: str, rel: str) -> str:
    return root if rel == "." else root + "/" + rel


def _stat_key(full: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(full)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class Stamp:
    """One stamp, parsed (`parse`) or made from a build's observations (`record`)."""

    key: str
    order: tuple[str, ...]
    jobs: int
    probes: tuple[tuple[Probe, str, bool], ...]
    reals: dict[str, str]
    globs: dict[str, tuple[str, ...]]
    specs: dict[str, bool]
    packages: dict[str, str]
    reads: dict[str, str]
    files: tuple[tuple[str, int, int, int, int], ...]
    dirs: tuple[tuple[str, str, bool], ...]
    missing: tuple[tuple[str, bool], ...]

    # -- making one -------------------------------------------------------------------
    @classmethod
    def record(
        cls, key: str, order: list[str], jobs: int, seen: Observer, memo: StateMemo
    ) -> Stamp | None:
        """The stamp of a build that found ``order`` fresh, from what it ``seen``; None
        when something it depended on cannot be re-checked by stat (a file digest the
        memo does not hold as trusted: hashed within its racy window, or changed since; a
        directory whose tree record is not one `StateMemo.trusted_tree` trusts)."""
        if seen.unfit is not None:
            return None
        files: list[tuple[str, int, int, int, int]] = []
        dirs: list[tuple[str, str, bool]] = []
        missing: list[tuple[str, bool]] = []
        for rel, (xxh, is_dir, out) in sorted(seen.digests.items()):
            if xxh is None:
                missing.append((rel, out))
            elif is_dir:
                if not memo.trusted_tree(rel, out, xxh):
                    return None
                dirs.append((rel, xxh, out))
            else:
                trusted = _trusted(memo, rel, xxh)
                if trusted is None:
                    return None
                files.append((rel, *trusted))
        return cls(
            key=key,
            order=tuple(order),
            jobs=jobs,
            probes=tuple(sorted((k, rel, a) for (k, rel), a in seen.probes.items())),
            reals=dict(sorted(seen.reals.items())),
            globs=dict(sorted(seen.globs.items())),
            specs=dict(sorted(seen.specs.items())),
            packages=dict(sorted(seen.packages.items())),
            reads=dict(sorted(seen.reads.items())),
            files=tuple(files),
            dirs=tuple(dirs),
            missing=tuple(missing),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STAMP_VERSION,
            "key": self.key,
            "order": list(self.order),
            "jobs": self.jobs,
            "probes": {
                k.value: [
                    [rel for kind, rel, _ in self.probes if kind is k],
                    [a for kind, _, a in self.probes if kind is k],
                ]
                for k in sorted({kind for kind, _, _ in self.probes})
            },
            "reals": self.reals,
            "globs": {p: list(m) for p, m in self.globs.items()},
            "specs": self.specs,
            "packages": self.packages,
            "reads": self.reads,
            "files": [[f[0] for f in self.files], [n for f in self.files for n in f[1:]]],
            "dirs": [list(d) for d in self.dirs],
            "missing": [list(m) for m in self.missing],
        }

    # -- reading one ------------------------------------------------------------------
    @classmethod
    def load(cls, path: str) -> Stamp | None:
        """The stamp at ``path`` if there is one and it passes `parse`, else None."""
        try:
            with open(path, "rb") as f:
                return cls.parse(json.loads(f.read()))
        except (OSError, ValueError, RecordError):
            return None

    @classmethod
    def parse(cls, data: Any) -> Stamp | None:
        """The strict parser: every field of the documented type, every path relative and
        normalized (RecordError otherwise); None for another version."""
        if not isinstance(data, dict) or data.get("version") != STAMP_VERSION:
            return None
        key = _str(data.get("key"), "key")
        order = tuple(_str(n, "order") for n in _list(data.get("order"), "order"))
        jobs = data.get("jobs")
        if type(jobs) is not int or jobs < 1:
            raise RecordError("noop stamp: jobs is not a positive count")
        probes: list[tuple[Probe, str, bool]] = []
        for kind, column in _dict(data.get("probes"), "probes").items():
            try:
                probe = Probe(kind)
            except ValueError:
                raise RecordError(f"noop stamp: unknown probe {kind!r}") from None
            rels, answers = _tuple(column, 2, "probes")
            _check_paths(_list(rels, "probes"))
            if not _all_of(bool, _list(answers, "probes")) or len(answers) != len(rels):
                raise _fail("probes")
            probes += ((probe, rel, a) for rel, a in zip(rels, answers, strict=True))
        reals = {
            _rel(r, "noop stamp real path"): _str(v, "reals")
            for r, v in _dict(data.get("reals"), "reals").items()
        }
        globs = {
            _rel(p, "noop stamp glob"): tuple(
                _rel(m, "noop stamp glob match") for m in _list(v, "globs")
            )
            for p, v in _dict(data.get("globs"), "globs").items()
        }
        specs = {
            _str(m, "specs"): _bool(v, "specs")
            for m, v in _dict(data.get("specs"), "specs").items()
        }
        packages = {
            _str(n, "packages"): _str(v, "packages")
            for n, v in _dict(data.get("packages"), "packages").items()
        }
        reads = {
            _rel(r, "noop stamp read"): _digest(v, allow_empty=True)
            for r, v in _dict(data.get("reads"), "reads").items()
        }
        rels, nums = _tuple(data.get("files"), 2, "files")
        _check_paths(_list(rels, "files"))
        if not _all_of(int, _list(nums, "files")) or len(nums) != 4 * len(rels):
            raise _fail("files")
        files = [(rel, *nums[4 * i : 4 * i + 4]) for i, rel in enumerate(rels)]
        dirs = []
        for item in _list(data.get("dirs"), "dirs"):
            rel, xxh, out = _tuple(item, 3, "dirs")
            dirs.append((_rel(rel, "noop stamp dir"), _digest(xxh), _bool(out, "dirs")))
        missing = []
        for item in _list(data.get("missing"), "missing"):
            rel, out = _tuple(item, 2, "missing")
            missing.append((_rel(rel, "noop stamp missing"), _bool(out, "missing")))
        return cls(
            key=key,
            order=order,
            jobs=jobs,
            probes=tuple(probes),
            reals=reals,
            globs=globs,
            specs=specs,
            packages=packages,
            reads=reads,
            files=tuple(files),
            dirs=tuple(dirs),
            missing=tuple(missing),
        )

    # -- checking one -----------------------------------------------------------------
    def holds(self, root: str, trees_dir: str) -> bool:
        """Whether every observation still gets the same answer in the workspace at
        ``root`` (the cheapest questions first, the walks of directories last; the first
        different one ends it)."""
        return self.holds_but_walks(root) and self._dirs_hold(root, trees_dir)

    def holds_but_walks(self, root: str) -> bool:
        """`holds` without walking the directories: what the build that writes the stamp
        re-checks as it leaves. Its directories need no second walk there: each was
        recorded only with a tree record the memo trusts (`record`), and the next `holds`
        walks it against that record, so a file changed after the build looked is caught
        then. A path probed and digested is stat'ed once (lstat; stat too for a link)."""
        stats: dict[str, tuple[os.stat_result | None, os.stat_result | None]] = {}
        return (
            self._probes_hold(root, stats)
            and self._files_hold(root, stats)
            and all(_read_digest(_full(root, rel)) == d for rel, d in self.reads.items())
            and all(os.path.realpath(_full(root, rel)) == r for rel, r in self.reals.items())
            and all(_stat_key(_full(root, rel)) is None for rel, _ in self.missing)
            and self._globs_hold(root)
            and all(installed(m) == found for m, found in self.specs.items())
            and all(_version(n) == v for n, v in self.packages.items())
        )

    def _probes_hold(self, root: str, stats: dict[str, _Stats]) -> bool:
        for kind, rel, answer in self.probes:
            lst, st = stats[rel] if rel in stats else _stats(root, rel, stats)
            if _answer(kind, lst, st) != answer:
                return False
        return True

    def _files_hold(self, root: str, stats: dict[str, _Stats]) -> bool:
        for rel, *key in self.files:
            st = (stats[rel] if rel in stats else _stats(root, rel, stats))[1]
            if st is None or (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != tuple(key):
                return False
        return True

    def _dirs_hold(self, root: str, trees_dir: str) -> bool:
        if not self.dirs:
            return True
        memo = StateMemo(root, None, trees_dir)  # the tree records; per-file memo unused
        for rel, xxh, out in self.dirs:
            try:
                if memo.recorded_tree(rel, out) != xxh:
                    return False
            except (OSError, ValueError, MlbuildError):  # gone, not a dir, a link leading out
                return False
        return True

    def _globs_hold(self, root: str) -> bool:
        if not self.globs:
            return True
        from .config.paths import expand_glob  # the loader's own walker (imports the loader)

        return all(tuple(expand_glob(root, p)) == m for p, m in self.globs.items())


_Stats = tuple[os.stat_result | None, os.stat_result | None]


def _stats(root: str, rel: str, known: dict[str, _Stats]) -> _Stats:
    """``rel``'s lstat and stat (None where it fails), kept in ``known``."""
    full = _full(root, rel)
    try:
        lst: os.stat_result | None = os.lstat(full)
    except OSError:
        lst = None
    st = lst
    if lst is not None and stat.S_ISLNK(lst.st_mode):
        try:
            st = os.stat(full)
        except OSError:
            st = None
    known[rel] = (lst, st)
    return known[rel]


# A path segment that is empty, "." or "..", anywhere in newline-joined paths.
_BAD_SEGMENT = re.compile(r"(?m)(?:^|/)\.{0,2}(?:/|$)")


def _check_paths(rels: list[Any]) -> None:
    """Every one of ``rels`` a relative, normalized POSIX path (`records.check_relpath`'s
    rule, in one pass over all of them: a stamp holds one per probed file)."""
    if not _all_of(str, rels):
        raise _fail("a path")
    joined = "\n".join(rels)
    if "\0" in joined or "\\" in joined or _BAD_SEGMENT.search(joined):
        raise _fail("a path")


def _all_of(kind: type, values: list[Any]) -> bool:
    return all(type(v) is kind for v in values)


def _answer(kind: Probe, lst: os.stat_result | None, st: os.stat_result | None) -> bool:
    """What `os.path.<kind>` answers for a path with lstat ``lst`` and stat ``st``."""
    if kind is Probe.LEXISTS:
        return lst is not None
    if kind is Probe.ISLINK:
        return lst is not None and stat.S_ISLNK(lst.st_mode)
    if kind is Probe.EXISTS:
        return st is not None
    if kind is Probe.ISFILE:
        return st is not None and stat.S_ISREG(st.st_mode)
    return st is not None and stat.S_ISDIR(st.st_mode)


def _trusted(memo: StateMemo, rel: str, xxh: str) -> tuple[int, int, int, int] | None:
    """The stat of ``rel`` if the memo trusts its entry for that stat (`StateMemo.trusted`:
    same stat, hashed outside the racy window) and the entry's digest is ``xxh``."""
    now = _stat_key(os.path.join(memo.root, rel))
    hit = memo.trusted(rel, now, False) if now is not None else None
    return now if hit is not None and hit.xxh == xxh else None


def _read_digest(full: str) -> str:
    try:
        with open(full, "rb") as f:
            return hash_bytes(f.read())
    except FileNotFoundError:
        return ""
    except OSError:
        return "unreadable"


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _fail(what: str) -> RecordError:
    return RecordError(f"noop stamp: {what} is malformed")


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _fail(what)
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(what)
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(what)
    return value


def _dict(value: Any, what: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise _fail(what)
    return value


def _tuple(value: Any, n: int, what: str) -> tuple[Any, ...]:
    if not isinstance(value, list) or len(value) != n:
        raise _fail(what)
    return tuple(value)


def _digest(value: Any, *, allow_empty: bool = False) -> str:
    if isinstance(value, str) and (XXH_PATTERN.fullmatch(value) or (allow_empty and not value)):
        return value
    raise _fail("a digest")
