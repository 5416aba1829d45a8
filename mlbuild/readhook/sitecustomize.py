"""mlbuild's read recorder: which workspace files a target's Python processes open.

mlbuild puts this directory first on ``PYTHONPATH`` for every job (see mlbuild/reads.py),
so every Python a target starts (``python x.py`` in a cmd, the subprocesses those start,
a callable's worker) imports this file at start-up and installs an audit hook
(``sys.addaudithook``, PEP 578) on the ``open`` event. No ptrace, no root, no sandbox: it
sees what Python's own ``open``/``os.open``/``io.open_code`` are asked to open, which is
where ML code reads its data.

Each process appends ``r<TAB>/abs/path`` (opened for reading) or ``w<TAB>/abs/path``
(opened for writing) to its own file in ``$MLBUILD_READS``, once per path, as it happens
(a process killed halfway still leaves what it read). Only paths under
``$MLBUILD_READS_ROOT`` are written; the interpreter's own tree (the standard library,
site-packages, even a ``.venv`` inside the workspace) is left out here, so the log stays
small. mlbuild decides afterwards what was undeclared.

The same processes compile the workspace's own Python sources from the source, never from
``__pycache__`` (`_fresh_code`): a cached ``.pyc`` is checked against its source by mtime in
whole seconds and size only, so an edit that keeps both would run the old code while
mlbuild, which hashes the content, records the new. Only files under the root, outside the
interpreter's tree, and only while recording; the cost is compiling those files (a few ms
for a typical training module).

This file must run on any Python 3.8+ that a command may start (a conda env's, the
system's), so it uses the standard library only and never imports mlbuild. It is
self-contained and must never raise: a failure to record is silent, a user's ``open`` is
never broken. A user's own ``sitecustomize`` further along ``sys.path`` still runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

_MODULE = "_mlbuild_readhook"
_state: dict[str, Any] = {"fd": -1, "roots": (), "skip": (), "seen": set()}
_installed = [False]


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "open":
        return
    fd = _state["fd"]
    if fd < 0:
        return
    try:
        path, mode, flags = args
        if path is None or isinstance(path, int):
            return  # an fd, not a path
        path = os.path.abspath(os.fsdecode(os.fspath(path)))
        if not path.startswith(_state["roots"]) or path.startswith(_state["skip"]):
            return
        if mode is not None:
            wrote = any(c in mode for c in "wax+")
            read = "r" in mode or "+" in mode
        else:
            access = flags & os.O_ACCMODE
            wrote = access != os.O_RDONLY or bool(flags & (os.O_CREAT | os.O_TRUNC))
            read = access != os.O_WRONLY
        for kind, did in (("w", wrote), ("r", read)):
            if did and (kind, path) not in _state["seen"]:
                _state["seen"].add((kind, path))
                os.write(fd, f"{kind}\t{path}\n".encode("utf-8", "surrogateescape"))
    except Exception:
        pass


def begin(log_dir: str, root: str) -> None:
    """Record this process's opens under ``root`` into a new file in ``log_dir``."""
    end()
    real = os.path.realpath(root)
    roots = {os.path.join(os.path.abspath(root), ""), os.path.join(real, "")}
    skip: set[str] = set()
    for prefix in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix):
        for form in (os.path.abspath(prefix), os.path.realpath(prefix)):
            skip.add(os.path.join(form, ""))
    name = os.path.join(log_dir, f"{os.getpid()}-{len(os.listdir(log_dir))}")
    # Opened before the hook records anything: this open is never logged.
    _state["fd"] = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    _state["roots"] = tuple(sorted(roots))
    _state["skip"] = tuple(sorted(skip))
    _state["seen"] = set()
    if not _installed[0]:
        sys.addaudithook(_hook)
        _fresh_code()
        _installed[0] = True


def _fresh_code() -> None:
    """Make ``SourceFileLoader`` compile workspace sources from the source while this
    process records (see the module docstring); every other file loads as before."""
    import importlib.machinery

    loader = importlib.machinery.SourceFileLoader
    original = loader.get_code

    def get_code(self: Any, fullname: str) -> Any:
        try:
            path = os.path.abspath(self.get_filename(fullname))
            ours = (
                _state["fd"] >= 0
                and path.startswith(_state["roots"])
                and not path.startswith(_state["skip"])
            )
        except Exception:
            ours = False
        if not ours:
            return original(self, fullname)
        return self.source_to_code(self.get_data(path), path)

    loader.get_code = get_code  # type: ignore[method-assign]


def end() -> None:
    """Stop recording (a callable's worker goes on to run other jobs)."""
    fd = _state["fd"]
    _state["fd"] = -1
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


def _chain() -> None:
    """Run the ``sitecustomize`` this one shadows (a distribution's or a venv's)."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


if __name__ == "sitecustomize":
    sys.modules.setdefault(_MODULE, sys.modules[__name__])
    _log, _root = os.environ.get("MLBUILD_READS"), os.environ.get("MLBUILD_READS_ROOT")
    if _log and _root and sys.modules[_MODULE] is sys.modules[__name__]:
        with contextlib.suppress(Exception):
            begin(_log, _root)
    _chain()
