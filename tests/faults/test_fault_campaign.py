"""A kill -9 campaign through the CLI (SPEC §9: kill -9 at any moment, then ``mlbuild``
again, gives a correct build with nothing recorded that was not finished).

Each round picks an operation (a cold build, a rebuild after an edit of a source or a
param, a restore from the local cache, ``push``, ``pull`` or ``--pull`` into a fresh clone,
``gc``, ``gc --remote``) and a delay from a seeded ``random.Random``, starts mlbuild in its
own session and SIGKILLs its process group that long after the operation's first write (so
the kill lands in its work, not in Python's start-up). Then:

- the lock file holds only finished builds (each entry is the one before, or the clean
  build's);
- ``mlbuild`` exits 0, and no command is left running in the workspace (a killed mlbuild's
  commands run in their own sessions: the next build stops them);
- every out equals, byte for byte, a clean build of the same sources made once in another
  directory, and so do the lock file's entries (keys, out digests);
- ``mlbuild cache verify`` (and ``--remote`` after a remote operation) exits 0, and
  ``mlbuild -q`` exits 0 (fresh);
- where the kill left temporary files (``.tmp-*``, ``.mlbuild-restore-*``), ``mlbuild gc``
  removes them: the workspace is then its sources, its lock file and its outs (checked
  after the last round too).

A failure names the seed, the round and the rounds before it: run the same seed to replay
the same operations and delays (where a kill lands inside them depends on the machine's
load). The short campaign runs always; the long one is ``pytest -m slow``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECTS, Project, Run, processes_in

# The knobs an edit turns: the file and its versions (the project ships version 0).
KNOBS: dict[str, tuple[str, ...]] = {
    "params.yaml": ("scale: 2\n", "scale: 3\n"),
    "src/rows.txt": ("1\n2\n3\n4\n5\n6\n7\n", "10\n20\n30\n40\n"),
    "src/notes.txt": ("first notes\n", "second notes\nwith two lines\n"),
}
# The call a round kills is a process of its own (`Campaign.kill_after`); the checks after
# it run the CLI in-process (tests/conftest.py), except the clean reference builds, whose
# timings (start-up included) scale the kill windows to the machine's load.
SOURCES = ("mlbuild.yaml", "steps.py", *KNOBS)
OUT_ROOTS = ("data", "out")  # every declared out lives under one of these
# Temporary names a kill may leave behind (atomic writes, restores): allowed after a round,
# removed by `mlbuild gc` (checked at the end of the campaign).
LEFTOVER_PREFIXES = (".tmp-", ".mlbuild-restore-")

OPS = ("cold", "edit", "restore", "push", "pull", "gc", "gc-remote")
# Seconds from an operation's first write to its end, measured on an idle 2-core machine
# (scaled by the measured start-up time): a kill is drawn uniformly in that window. Builds
# use the measured cold build instead.
WINDOW = {"restore": 0.06, "push": 0.08, "pull": 0.16, "gc": 0.03, "gc-remote": 0.05}
REMOTE_OPS = {"push", "pull", "gc-remote"}

Variant = tuple[int, ...]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLBUILD_SIGNING_KEY", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _files(root: Path, *, leftovers: bool = False) -> dict[str, bytes]:
    """The outs under ``root`` (every file below the out roots), with their bytes; with
    ``leftovers``, only the temporary files and directories a kill left anywhere outside
    .mlbuild/ (a directory restore works in a temporary directory beside its out)."""
    found: dict[str, bytes] = {}
    for dirpath, dirnames, names in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".mlbuild"]
        for name in dirnames + names if leftovers else names:
            rel = Path(dirpath, name).relative_to(root).as_posix()
            parts = rel.split("/")
            temporary = [i for i, part in enumerate(parts) if part.startswith(LEFTOVER_PREFIXES)]
            if leftovers and temporary:
                found["/".join(parts[: temporary[0] + 1])] = b""
            elif not leftovers and not temporary and parts[0] in OUT_ROOTS:
                found[rel] = Path(dirpath, name).read_bytes()
    return found


def _lock(root: Path, where: str = "") -> dict[str, Any]:
    """The lock file's entries ({} when there is none); it must always parse."""
    path = root / "mlbuild.lock"
    if not path.exists():
        return {}
    try:
        targets: dict[str, Any] = json.loads(path.read_text())["targets"]
    except (ValueError, KeyError, TypeError) as e:
        raise AssertionError(f"mlbuild.lock is damaged ({e}): {path.read_text()!r}\n{where}") from e
    return targets


def _signature(roots: tuple[Path, ...]) -> list[tuple[str, int, int]]:
    """Every file under ``roots`` with its size and mtime: changes when anything is written."""
    found: list[tuple[str, int, int]] = []
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for name in names:
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except OSError:
                    continue
                found.append((os.path.join(dirpath, name), st.st_size, st.st_mtime_ns))
    return found


def _kill_processes_in(root: Path) -> None:
    """SIGKILL what runs inside ``root`` (and its process group, never the test's own)."""
    for entry in processes_in(root):
        pid = int(entry.split()[0])
        with contextlib.suppress(OSError):
            group = os.getpgid(pid)
            if group != os.getpgrp():
                os.killpg(group, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)


@dataclass
class Clean:
    """A clean build of one variant of the sources: its outs and its lock entries."""

    outs: dict[str, bytes]
    lock: dict[str, Any]


@dataclass
class Campaign:
    seed: int
    base: Path
    rng: random.Random = field(init=False)
    ws: Project = field(init=False)
    remote: Path = field(init=False)
    variant: list[int] = field(default_factory=lambda: [0] * len(KNOBS))
    clean: dict[Variant, Clean] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    startup: float = 0.3  # seconds `mlbuild -q` takes on a fresh build (measured)
    cold: float = 1.5  # seconds of a cold build (measured)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.remote = self.base / "remote"
        self.config = (PROJECTS / "campaign" / "mlbuild.yaml").read_text() + (
            f"remote: file://{self.remote}\n"
        )
        self.ws = self._sources(self.base / "ws")

    # -- sources and clean builds ------------------------------------------------------
    def _sources(
        self, root: Path, variant: Variant | None = None, *, in_process: bool | None = None
    ) -> Project:
        """A directory holding only the sources of ``variant`` (default: the current one),
        as a fresh clone of the repository would."""
        root.mkdir(parents=True)
        shutil.copy(PROJECTS / "campaign" / "steps.py", root / "steps.py")
        (root / "mlbuild.yaml").write_text(self.config)
        chosen = tuple(self.variant) if variant is None else variant
        for (rel, versions), i in zip(KNOBS.items(), chosen, strict=True):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(versions[i])
        return Project(root, in_process=in_process)

    def reference(self) -> Clean:
        """The clean build of the current sources, made once per variant elsewhere."""
        variant = tuple(self.variant)
        if variant not in self.clean:
            name = "clean-" + "".join(map(str, variant))
            p = self._sources(self.base / name, variant, in_process=False)
            started = time.monotonic()
            run = p.mlbuild("-j", "2")
            assert run.code == 0, f"the clean build failed:\n{run.out}\n{run.err}"
            if not self.clean:
                self.cold = time.monotonic() - started
                started = time.monotonic()
                assert p.mlbuild("-q").code == 0
                self.startup = time.monotonic() - started
            self.clean[variant] = Clean(_files(p.root), _lock(p.root))
        return self.clean[variant]

    # -- one round ---------------------------------------------------------------------
    def where(self, rnd: int) -> str:
        return (
            f"seed={self.seed} round={rnd}; replay with this seed. Rounds so far:\n  "
            + "\n  ".join(self.history)
        )

    def kill_after(
        self, p: Project, args: list[str], delay: float
    ) -> tuple[float | None, int, str]:
        """Start ``mlbuild *args`` in its own session and SIGKILL its process group
        ``delay`` seconds after it first changes a file (in the workspace or the remote):
        start-up takes most of a small operation's time, a kill then would test nothing.
        Returns (when it was killed, counted from its start, or None if it ended first;
        its exit code; its stderr)."""
        watched = (p.root, self.remote)
        log = p.root.parent / f"{p.root.name}.stderr"
        with open(log, "wb") as err:
            before = _signature(watched)
            started = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlbuild", *args],
                cwd=p.root,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=_env(),
                start_new_session=True,
            )
            kill_at: float | None = None
            while proc.poll() is None:  # not reaped: its group id cannot have been reused
                now = time.monotonic()
                if kill_at is None and _signature(watched) != before:
                    kill_at = now + delay
                if kill_at is not None and now >= kill_at:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
                    return round(now - started, 3), proc.returncode, ""
                assert now - started < 60, f"mlbuild {' '.join(args)} hangs"
                time.sleep(0.002)
        return None, proc.returncode, log.read_text()

    def play(self, rnd: int) -> None:
        rng, ws = self.rng, self.ws
        op = rng.choice(OPS)
        target = ws
        args: list[str]
        work = WINDOW.get(op, 0.0) * max(1.0, self.startup / 0.3)
        build = max(0.3, self.cold - self.startup)
        detail = ""
        if op == "cold":
            for rel in (".mlbuild", "mlbuild.lock", *OUT_ROOTS):
                path = ws.root / rel
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            args, work = ["-j", rng.choice(["1", "2"])], build
        elif op == "edit":
            knob = rng.randrange(len(KNOBS))
            self.variant[knob] = 1 - self.variant[knob]
            rel = list(KNOBS)[knob]
            ws.write(rel, KNOBS[rel][self.variant[knob]])
            detail = f" {rel}->v{self.variant[knob]}"
            args, work = ["-j", rng.choice(["1", "2"])], build
        elif op == "restore":
            for rel in OUT_ROOTS:
                shutil.rmtree(ws.root / rel, ignore_errors=True)
            if rng.random() < 0.5:
                (ws.root / "mlbuild.lock").unlink(missing_ok=True)
                detail = " (and the lock file)"
            args = []
        elif op == "push":
            if rng.random() < 0.5:
                shutil.rmtree(self.remote, ignore_errors=True)
                detail = " (to an empty remote)"
            args = ["push"]
        elif op == "pull":  # `mlbuild pull` or `mlbuild --pull` in a fresh clone
            pushed = ws.mlbuild("push")
            assert pushed.code == 0, f"push before pull: {pushed.err}\n{self.where(rnd)}"
            target = self._sources(self.base / f"clone-{rnd}")
            if rng.random() < 0.5:
                shutil.copy(ws.root / "mlbuild.lock", target.root / "mlbuild.lock")
                detail = " (with the lock file)"
            args = [rng.choice(["pull", "--pull"])]
        else:
            keep = rng.choice(["1", "2", "3"])
            args = ["gc", "--keep", keep] + (["--remote"] if op == "gc-remote" else [])
            detail = f" --keep {keep}"
        delay = round(rng.uniform(0, work), 3)
        before, progress = _lock(target.root, self.where(rnd)), self.progress(target.root)

        killed, code, err = self.kill_after(target, args, delay)
        self.history.append(
            f"{rnd}: {op}{detail}: mlbuild {' '.join(args)}, "
            + (
                f"killed {delay}s after its first write (at {killed}s)"
                if killed is not None
                else f"exited {code} before {delay}s after its first write"
            )
            + f" [{progress} -> {self.progress(target.root)}]"
        )
        where = self.where(rnd)
        assert killed is not None or code == 0, f"exit {code} without a kill: {err}\n{where}"
        self.check(target, before, op in REMOTE_OPS, where)

    def progress(self, root: Path) -> str:
        """How far an operation got: lock entries, outs, local and remote objects and
        run-cache entries (compared before and after the kill)."""

        def count(path: Path) -> int:
            return sum(len(files) for _, _, files in os.walk(path))

        cache = root / ".mlbuild" / "cache"
        try:
            lock = str(len(_lock(root)))
        except AssertionError:
            lock = "DAMAGED"  # check() says how
        return (
            f"lock {lock} outs {len(_files(root))} "
            f"cache {count(cache / 'objects')}+{count(cache / 'runs')} "
            f"remote {count(self.remote / 'objects')}+{count(self.remote / 'runs')}"
        )

    # -- the promise -------------------------------------------------------------------
    def check(self, p: Project, before: dict[str, Any], remote: bool, where: str) -> None:
        clean = self.reference()
        # Nothing recorded that was not finished: each entry is the old one or a clean one.
        for name, entry in _lock(p.root, where).items():
            assert entry in (before.get(name), clean.lock.get(name)), (
                f"after the kill the lock records an unfinished build of {name}\n{where}"
            )
        again = p.mlbuild("--json")
        assert again.code == 0, f"mlbuild after the kill: {again.code}\n{again.err}\n{where}"
        left = processes_in(p.root)
        _kill_processes_in(p.root)
        assert left == [], f"still running after the next build: {left}\n{where}"
        assert _files(p.root) == clean.outs, _diff(_files(p.root), clean.outs, where)
        assert _lock(p.root, where) == clean.lock, f"lock differs from the clean build's\n{where}"
        checks: list[tuple[str, ...]] = [("cache", "verify")]
        if remote:
            checks.append(("cache", "verify", "--remote"))
        for args in checks:
            run = p.mlbuild(*args)
            assert run.code == 0, _said(f"mlbuild {' '.join(args)}", run, where)
        fresh = p.mlbuild("-q")
        assert fresh.code == 0, _said("mlbuild -q", fresh, where)
        if _files(p.root, leftovers=True):  # a kill's temporary files: gc removes them
            self.collect(p, where)

    def collect(self, p: Project, where: str) -> None:
        """`mlbuild gc` removes every temporary file a kill left; the workspace is then its
        sources, its lock file and its outs, nothing else."""
        left = sorted(_files(p.root, leftovers=True))
        run = p.mlbuild("gc")
        assert run.code == 0, _said("mlbuild gc", run, where)
        still = sorted(_files(p.root, leftovers=True))
        assert still == [], f"gc left temporary files {still} (of {left})\n{where}"
        everything = {
            Path(d, n).relative_to(p.root).as_posix()
            for d, _, names in os.walk(p.root)
            for n in names
            if not Path(d, n).relative_to(p.root).as_posix().startswith(".mlbuild/")
        }
        expected = {*SOURCES, "mlbuild.lock", *self.reference().outs}
        assert everything == expected, f"unexpected files {everything ^ expected}\n{where}"

    def finish(self) -> None:
        """After the last round: gc, then the cache verifies and the build is fresh."""
        self.collect(self.ws, self.where(-1))
        for args in (("cache", "verify"), ("-q",)):
            run = self.ws.mlbuild(*args)
            assert run.code == 0, _said(f"mlbuild {' '.join(args)}", run, self.where(-1))


def _diff(got: dict[str, bytes], want: dict[str, bytes], where: str) -> str:
    wrong = sorted(k for k in got.keys() & want.keys() if got[k] != want[k])
    return (
        f"outs differ from the clean build: missing {sorted(want.keys() - got.keys())}, "
        f"extra {sorted(got.keys() - want.keys())}, different {wrong}\n{where}"
    )


def _said(what: str, run: Run, where: str) -> str:
    return f"{what} exited {run.code}:\n{run.out}\n{run.err}\n{where}"


@pytest.fixture
def campaign_dir(tmp_path: Path) -> Iterator[Path]:
    """The campaign's directory; a command a failing round left running is stopped."""
    yield tmp_path
    _kill_processes_in(tmp_path)


def _campaign(base: Path, seed: int, rounds: int) -> None:
    c = Campaign(seed, base)
    c.reference()  # the first clean build, and the timings the delays are drawn from
    assert c.ws.mlbuild().code == 0
    for rnd in range(rounds):
        c.play(rnd)
    c.finish()


# Seed 224 plays five different operations in five rounds (cold, pull, gc, restore, edit);
# the long campaign (`pytest -m slow`, run by CI after the suite) plays 240 rounds.
@pytest.mark.parametrize("seed", [224])
def test_kill_9_at_random_points_then_mlbuild_gives_the_clean_build(
    campaign_dir: Path, seed: int
) -> None:
    _campaign(campaign_dir, seed, rounds=5)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_long_kill_9_campaign_gives_the_clean_build_every_round(
    campaign_dir: Path, seed: int
) -> None:
    _campaign(campaign_dir, seed, rounds=60)
