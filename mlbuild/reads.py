"""Undeclared reads: the workspace files a target's Python code opened that its key does not
cover.

A build key covers what a target declares (deps, code deps, params, env, packages). A script
that also opens ``data/extra.csv`` builds a model the key does not describe: edit the file
and mlbuild would call the model fresh. No build tool in this field notices; Bazel needs a
sandbox. mlbuild notices for Python, where ML code runs, with an audit hook
(mlbuild/readhook/sitecustomize.py) that every Python process of the job loads from
``PYTHONPATH``. The executor (`recording`) gives the job a log directory, and `collect`
reads what was opened; the rebuilder then calls `undeclared` with what the target declares.

What it cannot see (docs/design.md): reads by programs that are not Python (``cat``,
``awk``, a compiled binary), by C code that opens files itself rather than through Python,
by a Python started with ``-I``/``-E`` (it ignores ``PYTHONPATH``), and a directory listed
but not opened. Those stay the user's to declare, as in every other tool.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["HOOK_DIR", "collect", "hook_env", "recording", "start_in_process", "undeclared"]

HOOK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "readhook")
_LOG_ENV = "MLBUILD_READS"
_ROOT_ENV = "MLBUILD_READS_ROOT"
# Never reported: mlbuild's own state (``store.layout.STATE_DIR``, added by `collect`), git's,
# Python's bytecode caches, and installed packages (a venv inside the workspace, a ``pip
# install --target`` directory): a package's version joins the key through ``packages:``,
# not its files.
_IGNORED_PARTS = frozenset({".git", "__pycache__", "site-packages", "dist-packages"})
# Installed-package metadata (`pip install -e .` writes NAME.egg-info/ in the workspace, and
# importlib.metadata reads it from a job's cwd): covered by `packages:`, like site-packages.
_METADATA_SUFFIXES = (".egg-info", ".dist-info")


def hook_env(log_dir: str, root: str, declared: Mapping[str, str]) -> dict[str, str]:
    """The env entries that make every Python of a job record its opens into ``log_dir``:
    the hook's directory first on ``PYTHONPATH`` (before the target's own or the caller's)."""
    rest = declared.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    path = os.pathsep.join([HOOK_DIR, *([rest] if rest else [])])
    return {"PYTHONPATH": path, _LOG_ENV: log_dir, _ROOT_ENV: root}


@contextlib.contextmanager
def recording() -> Iterator[str]:
    """A fresh log directory for one job's reads, removed afterwards (outside the
    workspace, so the log's own writes are never recorded)."""
    log_dir = tempfile.mkdtemp(prefix="mlbuild-reads-")
    try:
        yield log_dir
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


def start_in_process(env: Mapping[str, str]) -> Any:
    """Record this process's own opens (a callable run in a worker process), if ``env``
    asks for it; returns the hook module (call its ``end()``) or None.

    The hook is the very file a job's subprocesses load as ``sitecustomize``, loaded once
    per process under one name so that a process never installs two hooks."""
    import importlib.util
    import sys

    log_dir, root = env.get(_LOG_ENV), env.get(_ROOT_ENV)
    if not log_dir or not root:
        return None
    module = sys.modules.get("_mlbuild_readhook")
    if module is None:
        spec = importlib.util.spec_from_file_location(
            "_mlbuild_readhook", os.path.join(HOOK_DIR, "sitecustomize.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["_mlbuild_readhook"] = module
    module.begin(log_dir, root)
    return module


def collect(log_dir: str, root: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(files read, files written *and read back*) under ``root``, as sorted
    workspace-relative paths. A write matters only to tell a scratch file read back (the
    job's own product) from an input; a job writing 100,000 files keeps none of them here.

    The logs were written by the job's processes, the user's code: a line that is not
    ``r``/``w``, a TAB and an absolute path under ``root`` is dropped, never followed."""
    # Here, not at module level: a worker process running a callable imports this module
    # (start_in_process) and must not pay for loading the store (~40 ms per job).
    from .store.layout import STATE_DIR

    ignored = _IGNORED_PARTS | {STATE_DIR}
    roots = sorted({os.path.abspath(root), os.path.realpath(root)}, key=len, reverse=True)
    read: set[str] = set()
    wrote: set[str] = set()
    try:
        names = sorted(os.listdir(log_dir))
    except OSError:
        return (), ()
    for name in names:
        try:
            with open(os.path.join(log_dir, name), "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        for line in data.decode("utf-8", "surrogateescape").splitlines():
            kind, _, path = line.partition("\t")
            if kind not in ("r", "w") or not os.path.isabs(path):
                continue
            rel = _relative(os.path.normpath(path), roots, ignored)
            if rel is not None:
                (read if kind == "r" else wrote).add(rel)
    return tuple(sorted(read)), tuple(sorted(wrote & read))


# mlbuild's own source (the workspace may be mlbuild's checkout, as with the demo): the
# job's supervisor and a Dask worker's callable runner import it, the target does not.
_OWN = os.path.join(os.path.dirname(HOOK_DIR), "")


def _relative(path: str, roots: Iterable[str], ignored: frozenset[str]) -> str | None:
    if path.startswith(_OWN):
        return None
    for root in roots:
        prefix = os.path.join(root, "")
        if path.startswith(prefix):  # normalized already: slicing is relpath, 3x faster
            rel = path[len(prefix) :].replace(os.sep, "/")
            parts = rel.split("/")
            if set(parts) & ignored or any(p.endswith(_METADATA_SUFFIXES) for p in parts):
                return None
            return rel
    return None


def undeclared(
    read: Iterable[str], written: Iterable[str], declared: Iterable[str], root: str
) -> list[str]:
    """The files read that nothing declared covers, sorted.

    ``declared`` holds workspace-relative paths (deps, code deps, params files, the
    target's own outs); a declared directory covers every file under it. A file the job
    wrote itself (a scratch file read back) is its own product, not an input; a path that
    is not a regular file now (a probe of a missing file, a directory) is left out."""
    covered = {d.rstrip("/") for d in declared}
    mine = set(written)
    found = []
    for rel in read:
        if rel in mine or rel in covered:
            continue
        parts = rel.split("/")
        if any("/".join(parts[:i]) in covered for i in range(1, len(parts))):
            continue
        if os.path.isfile(os.path.join(root, rel)):
            found.append(rel)
    return sorted(found)
