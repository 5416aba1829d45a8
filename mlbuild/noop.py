"""The no-op fast path of `Workspace.build`: answer "everything is fresh" from the stamp.

A build that found every target fresh leaves a stamp (stamp.py): its answer and every
question its load and decisions asked the disk (observe.py). The next build with the same
invocation re-asks only those questions, under the workspace lock, and when every answer is
the same reports the same fresh targets, through the same events, without loading the
pipeline, parsing the lock file or deciding anything.

Only a plain build is answered this way, and only such a build writes a stamp: no ``--set``
(the note about unread keys needs the pipeline), no -B/--force-all, no --pull/--push or
``remote_write`` (a no-op that pushes does work), no signing key (its check is the build's
to make), no `temp` target (a no-op may drop temp outs), no caller's executor, and no
command left running by a killed mlbuild (the full path reaps and names it).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

from .events import BuildEvents
from .observe import Observer
from .options import BuildOptions
from .results import BuildResult, Outcome, TargetResult
from .stamp import Stamp, invocation_key
from .store.atomic import atomic_write
from .store.layout import Layout
from .store.records import RecordError
from .store.state import StateMemo
from .store.wslock import WorkspaceLock

__all__ = ["answer", "asked", "keep", "left_running"]


def asked(
    config_path: str, lock_path: str, targets: tuple[str, ...], options: BuildOptions
) -> dict[str, Any] | None:
    """What this build is asked, as the stamp's key parts; None when a build with these
    options is not one the stamp may answer (see the module docstring)."""
    if (
        options.dry_run
        or options.force
        or options.force_all
        or options.pull
        or options.push
        or not options.run
        or os.environ.get("MLBUILD_SIGNING_KEY")
    ):
        return None
    return {
        "config": config_path,
        "lock": lock_path,
        "targets": list(targets),
        "options": repr(options),
        "cpus": os.cpu_count(),
    }


def answer(
    layout: Layout, parts: dict[str, Any], events: BuildEvents, *, wait: bool
) -> BuildResult | None:
    """The build's result from the stamp if it holds, checked under the workspace lock
    (``wait`` for it as the build would), with the events a full no-op sends; None: build
    the full way."""
    started = time.monotonic()
    with WorkspaceLock(layout.workspace_lock, wait=wait):
        stamp = Stamp.load(layout.stamp_file)
        if stamp is None or left_running(layout.running_dir):
            return None
        if stamp.key != invocation_key(parts) or not stamp.holds(layout.root, layout.trees_dir):
            return None
    order = list(stamp.order)
    events.build_started(order, stamp.jobs)
    fresh = tuple(TargetResult(name, Outcome.FRESH) for name in order)
    for one in fresh:
        events.target_finished(one)
    result = BuildResult(targets=fresh, seconds=time.monotonic() - started)
    events.build_finished(result)
    return result


def keep(
    stamp_file: str,
    parts: dict[str, Any],
    seen: Observer,
    result: BuildResult,
    jobs: int,
    memo: StateMemo,
) -> None:
    """After a full build: write the stamp if every target was fresh and every observation
    still holds as the build leaves the workspace, directories aside: each is walked by the
    next check against the tree record the build trusted (`Stamp.holds_but_walks`); else
    leave none behind."""
    ok = not result.interrupted and all(t.outcome is Outcome.FRESH for t in result.targets)
    order = [t.target for t in result.targets]
    made = Stamp.record(invocation_key(parts), order, jobs, seen, memo) if ok else None
    data = json.dumps(made.to_json(), separators=(",", ":")) if made else ""
    try:
        # What is written is what the next build parses: check that form, not this one.
        stamp = Stamp.parse(json.loads(data)) if made else None
    except RecordError:
        stamp = None
    if stamp is not None and stamp.holds_but_walks(seen.root):
        with contextlib.suppress(OSError):  # a cache: a lost stamp costs one full no-op
            atomic_write(stamp_file, data.encode(), durable=False)
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(stamp_file)


def left_running(running_dir: str) -> bool:
    try:
        return bool(os.listdir(running_dir))
    except FileNotFoundError:
        return False
    except OSError:
        return True
