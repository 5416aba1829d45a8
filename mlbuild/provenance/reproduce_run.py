"""`mlbuild reproduce`, phase 2: run the recorded command or callable in the scratch
directory, with the executors builds use (local or Dask), under the caller's secrets."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..executors import Executor
from ..jobs.spec import Job, JobResult
from ..options import BuildOptions
from ..store import StateMemo

if TYPE_CHECKING:
    from ..config import TargetSpec
    from ..workspace import Workspace
    from .records import Manifest
    from .reproduce_stage import Inputs

__all__ = ["executor_for", "job_for", "package_notes", "run_job", "secrets_for", "versions"]


def secrets_for(spec: TargetSpec, build: Manifest) -> dict[str, str]:
    """The secret env values the build used, from the caller's environment now (a
    manifest holds their names only)."""
    values: dict[str, str] = {}
    for env_name, entry in sorted((build.get("env") or {}).items()):
        if not isinstance(entry, dict):
            continue
        source = spec.secrets.get(env_name)
        if source is None:
            raise UsageError(
                f"{spec.name}'s build read the secret env {env_name}, which mlbuild.yaml "
                "no longer declares: mlbuild cannot tell where to read it from",
                hint=f"declare it again: env: {{{env_name}: {{from: VAR, secret: true}}}}",
            )
        if source not in os.environ:
            raise UsageError(
                f"secret env {env_name} of {spec.name} is read from ${source}, which is "
                "not set",
                hint=f"export {source} and run mlbuild reproduce again",
            )
        values[env_name] = os.environ[source]
    return values

def job_for(
    spec: TargetSpec,
    build: Manifest,
    work: str,
    log: str,
    running_dir: str,
    secrets: dict[str, str],
    inputs: Inputs,
) -> Job:
    """The recorded build as a Job rooted in the scratch directory. Lists keep the
    order mlbuild.yaml gives them now when they hold the recorded paths (a callable
    sees ``deps`` and ``outs`` in that order), else the recorded (sorted) order."""
    components = build.get("components") or {}
    deps = [d["path"] for d in build["deps"]]
    outs = [o["path"] for o in build["outs"]]
    dep_paths = list(spec.dep_paths) if sorted(spec.dep_paths) == sorted(deps) else deps
    out_paths = list(spec.outs) if sorted(spec.outs) == sorted(outs) else outs
    plain = {k: v for k, v in (build.get("env") or {}).items() if isinstance(v, str)}
    command = build.get("command")
    return Job(
        target=spec.name,
        root=work,
        cmds=tuple(command) if command else None,
        python=build.get("python"),
        env={
            **plain,
            **secrets,
            "MLBUILD_TARGET": spec.name,
            "MLBUILD_OUTS": " ".join(out_paths),
        },
        deps=tuple(dep_paths),
        outs=tuple(out_paths),
        params=dict(build.get("params") or {}),
        matrix=dict(components.get("matrix") or {}),
        log_path=log,
        running_dir=running_dir,
        retries=spec.retries,
        resources=dict(spec.resources),
        inputs=tuple(sorted(inputs.files)),
        secret_env=tuple(sorted(secrets)),
    )

def package_notes(build: Manifest) -> list[str]:
    """Declared packages whose version now differs from the build's: the reproduction
    runs with today's, which may be why it differs."""
    recorded = (build.get("environment") or {}).get("packages") or {}
    now = versions(recorded)
    return [
        f"package {pkg} is {now[pkg]} here, the build had {version}"
        for pkg, version in sorted(recorded.items())
        if now[pkg] != version
    ]

def executor_for(ws: Workspace, options: BuildOptions, work: str, running_dir: str) -> Executor:
    """The executor a build would use (options, else mlbuild.yaml; wiring.cluster_executor
    makes the same checks): local, or Dask (shared: workers see the scratch directory,
    which is inside the workspace; remote: inputs and outs travel through the remote
    cache, staged from the scratch directory)."""
    from ..wiring import cluster_executor

    cluster = cluster_executor(
        ws.pipeline,
        options,
        StateMemo(work, None),
        ws.cache,
        lambda: ws.transfer(options),
        root=work,
    )
    if cluster is not None:
        return cluster
    from ..executors.local import LocalExecutor

    return LocalExecutor(1, stream=options.verbose, running_dir=running_dir)


def run_job(executor: Executor, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
    """Run ``job`` in a thread while this (the main) thread waits, so that Ctrl-C and
    SIGTERM land here: every process of the job is stopped before the scratch goes."""
    outcome: list[JobResult] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(executor.run(job, on_output))
        except BaseException as exc:  # re-raised in the main thread
            failure.append(exc)

    runner = threading.Thread(target=work, name="mlbuild-reproduce", daemon=True)
    try:
        runner.start()
        while runner.is_alive():
            runner.join(timeout=0.1)
    except KeyboardInterrupt:
        executor.kill_all()
        runner.join()
        raise
    finally:
        executor.shutdown()
    if failure:
        raise failure[0]
    return outcome[0]


def versions(packages: Mapping[str, Any]) -> dict[str, str]:
    """The installed version of each package named (``not installed``: none), as a build
    records them."""
    from importlib import metadata

    found: dict[str, str] = {}
    for pkg in sorted(packages):
        try:
            found[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            found[pkg] = "not installed"
    return found

