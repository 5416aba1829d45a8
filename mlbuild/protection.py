"""Outs that share their inode with the cache (``cache: {link: [hardlink, ...]}``).

A hardlinked out is its cache object: writing it in place would change the object every
build restores from, so both are read-only (0444, 0555 when executable) and a write is
refused (root is not stopped by modes: a write by root is caught when the object is next
read, since every placed file is hashed against its name, and the object is dropped).
Two things here:

- `unprotect`: ``mlbuild unprotect PATH`` replaces each linked file under PATH with a
  private, writable copy of the same bytes (a reflink where the filesystem has them), so
  the user can edit it; the out's digest does not change, the next build sees an edit as
  for any out.
- `protected_under`: the linked files among a failed command's deps, for the warning that
  says why a write was refused and how to edit the file.

A file counts as linked when it has more than one link: the cache makes no other links,
and breaking a user's own hardlink inside an out changes no byte of it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from .config import Pipeline, check_inside
from .errors import UsageError
from .store.cache import clone_file, remove_tree

__all__ = ["Unprotected", "protected_under", "unprotect"]


@dataclass(frozen=True)
class Unprotected:
    """What `unprotect` did to one PATH: the files that are private copies now."""

    path: str
    files: tuple[str, ...]


def unprotect(pipeline: Pipeline, paths: Iterable[str]) -> list[Unprotected]:
    """Give every linked file under each of ``paths`` (workspace-relative or absolute) a
    private, writable copy. A path that is not a declared out, or inside one, is a usage
    error (exit 2), checked for every path before any file is touched."""
    checked = [_checked(pipeline, raw) for raw in paths]
    return [Unprotected(rel, tuple(_unprotect(pipeline.root, rel))) for rel in checked]


def protected_under(root: str, paths: Iterable[str], limit: int = 3) -> list[str]:
    """Up to ``limit`` linked, read-only files at or under ``paths`` (workspace-relative),
    in order: the deps a command may have failed to write."""
    found: list[str] = []
    for rel in paths:
        for sub in _files(root, rel):
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, sub))
                if st.st_nlink > 1 and not st.st_mode & 0o222:
                    found.append(sub)
                    if len(found) >= limit:
                        return found
    return found


def _checked(pipeline: Pipeline, raw: str) -> str:
    rel = os.path.relpath(os.path.abspath(raw), pipeline.root).replace(os.sep, "/")
    if rel == ".." or rel.startswith("../") or not check_inside(pipeline.root, rel):
        raise UsageError(f"{raw} is outside the workspace")
    if not os.path.lexists(os.path.join(pipeline.root, rel)):
        raise UsageError(f"{raw} does not exist")
    if pipeline.owner_of(rel) is None:
        raise UsageError(
            f"{raw} is not an out of any target: only outs are ever linked to the cache",
            hint="mlbuild show TARGET lists a target's outs",
        )
    return rel


def _files(root: str, rel: str) -> list[str]:
    """The regular files at or under ``rel``, sorted; links are never followed."""
    full = os.path.join(root, rel)
    try:
        st = os.lstat(full)
    except OSError:
        return []
    if stat.S_ISREG(st.st_mode):
        return [rel]
    if not stat.S_ISDIR(st.st_mode):
        return []
    found: list[str] = []
    stack = [full]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    found.append(os.path.relpath(entry.path, root).replace(os.sep, "/"))
    return sorted(found)


def _unprotect(root: str, rel: str) -> list[str]:
    done: list[str] = []
    for sub in _files(root, rel):
        full = os.path.join(root, sub)
        st = os.lstat(full)
        if st.st_nlink < 2:
            continue
        tmp = os.path.join(os.path.dirname(full), f".mlbuild-restore-{os.getpid()}-unprotect")
        try:
            clone_file(full, tmp)  # a reflink or a copy: never the same inode
            os.chmod(tmp, 0o755 if st.st_mode & stat.S_IXUSR else 0o644)
            os.replace(tmp, full)
        except BaseException:
            with contextlib.suppress(OSError):
                remove_tree(tmp)
            raise
        done.append(sub)
    return done
