"""The `mlbuild` command: click commands over `Workspace`.

The ONLY place that prints errors and picks exit codes (see errors.py for the table).
A bare ``mlbuild [OPTIONS] [TARGETS]`` is ``mlbuild build ...``: `main` inserts the word
``build`` when the first word is not a subcommand, as make users expect.
"""

from __future__ import annotations

import gc as pygc
import json
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from . import __version__, interrupts
from .errors import MlbuildError, UsageError, VerificationError, environment_fault

if TYPE_CHECKING:
    from .model import Reason
    from .workspace import Explanation, Workspace

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BUG = 70

_GROUP_VALUE_OPTS = {"-C", "--directory", "-f", "--file"}
_GROUP_FLAGS = {"--debug", "--version", "--help", "-h"}


class _State:
    directory: str | None = None
    file: str | None = None
    debug: bool = False


STATE = _State()


def _base_dir() -> str:
    """The -C directory (as make -C: everything else is relative to it), checked."""
    base = STATE.directory or "."
    if not os.path.isdir(base):
        raise UsageError(f"-C {base}: no such directory")
    return base


def _workspace() -> Workspace:
    from .workspace import Workspace

    base = _base_dir()
    if STATE.file:
        return Workspace(config=os.path.join(base, STATE.file))
    return Workspace(base)


def _write_output(text: str, output: str | None) -> None:
    """``-o FILE`` writes there; without it, stdout."""
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


class _Commands(click.Group):
    """Subcommands, with one "did you mean" for a mistyped one (suggest.py: a swap of two
    letters is one edit, so `mlbuild stauts` names `mlbuild status`).

    `_route` hands click a first word that is not a subcommand only when it is close to
    one; every other word is a target for `build`. Such a close word still builds when it
    names a target (a target ``graphs``); otherwise it is click's usage error (exit 2)
    naming the subcommand it resembles. Subgroups (`mlbuild metrics shwo`) use this class
    too, and only suggest."""

    group_class = type  # `@cli.group()` makes subgroups of this class

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if (
            not name
            or name.startswith("-")
            or ctx.resilient_parsing  # shell completion: no loading, no errors
            or self.get_command(ctx, name) is not None
        ):
            return super().resolve_command(ctx, args)
        if ctx.parent is None and "build" in self.commands and _names_target(ctx, name):
            return "build", self.commands["build"], args
        from .suggest import suggest

        close = suggest(name, self.list_commands(ctx))
        hint = f": did you mean `{ctx.command_path} {close}`?" if close else "."
        raise click.UsageError(f"No such command {name!r}{hint}", ctx)


def _names_target(ctx: click.Context, word: str) -> bool:
    """Whether ``word`` is a target of the workspace the group options point at (False when
    there is none or its config does not load: then the word is taken as a mistyped
    subcommand)."""
    from .errors import ConfigError
    from .pipeline import find_config, load_pipeline

    base = ctx.params.get("directory") or "."
    file_ = ctx.params.get("file_")
    try:
        config = os.path.join(base, file_) if file_ else find_config(base)
        return word in load_pipeline(config).targets
    except (ConfigError, OSError):
        return False


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "--directory", metavar="DIR", help="Run in workspace DIR (as make -C).")
@click.option("-f", "--file", "file_", metavar="FILE", help="Use FILE instead of mlbuild.yaml.")
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
@click.version_option(__version__, prog_name="mlbuild")
def cli(directory: str | None, file_: str | None, debug: bool) -> None:
    """mlbuild: make for machine learning.

    \b
    mlbuild [OPTIONS] [TARGETS]...   build targets (default: `default:` or all)
    mlbuild status                   what is fresh, stale, restorable
    mlbuild explain TARGET           why a target would rebuild
    mlbuild reproduce TARGET         re-run its recorded build; are the outs the same?

    Exit codes: 0 ok, 1 build failed (or -q: stale), 2 bad usage/config, 3 check or gate
    failed, 4 no target matched, 5 workspace locked, 6 verification failed, 130 interrupted.
    """
    STATE.directory, STATE.file, STATE.debug = directory, file_, debug


# ------------------------------------------------------------------------------ build


@cli.command()
@click.argument("targets", nargs=-1)
@click.option("-j", "--jobs", default=None, metavar="N", help="Parallel jobs (auto = CPU count).")
@click.option(
    "-n", "--dry-run", is_flag=True, help="Print what would run or be restored; change nothing."
)
@click.option(
    "-k", "--keep-going", is_flag=True, help="Go on with what does not depend on a failure."
)
@click.option("-B", "--force", is_flag=True, help="Rebuild the named targets even if fresh.")
@click.option(
    "--force-all", is_flag=True, help="Rebuild the named targets and their whole upstream."
)
@click.option("--no-cache", is_flag=True, help="Do not store outs in the cache.")
@click.option("--no-restore", is_flag=True, help="Do not restore from the cache; run instead.")
@click.option("-q", "--question", is_flag=True, help="Run nothing; exit 0 if fresh, 1 if stale.")
@click.option("-s", "--silent", is_flag=True, help="Print only failures.")
@click.option("-v", "--verbose", is_flag=True, help="Stream command output live.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines events on stdout.")
@click.option("--resources", default="", metavar="NAME=N,...", help="Capacity of resource pools.")
@click.option(
    "--wait/--no-wait", default=True, help="Wait for, or fail (exit 5) on, a held workspace lock."
)
@click.option("--remote", metavar="URL", help="Remote cache (fsspec URL) instead of remote:.")
@click.option("--pull", is_flag=True, help="Restore stale targets from the remote first.")
@click.option("--push", is_flag=True, help="Upload successful builds to the remote.")
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default=None,
    help="Where jobs run (default: executor: in mlbuild.yaml, else local).",
)
@click.option("--dask-address", metavar="ADDR", help="The Dask scheduler (tcp://HOST:8786).")
@click.option(
    "--dask-mode",
    type=click.Choice(["shared", "remote"]),
    default=None,
    help="Workers share the workspace, or get data through the remote cache.",
)
def build(
    targets: tuple[str, ...],
    jobs: str | None,
    dry_run: bool,
    keep_going: bool,
    force: bool,
    force_all: bool,
    no_cache: bool,
    no_restore: bool,
    question: bool,
    silent: bool,
    verbose: bool,
    as_json: bool,
    resources: str,
    wait: bool,
    remote: str | None,
    pull: bool,
    push: bool,
    executor: str | None,
    dask_address: str | None,
    dask_mode: str | None,
) -> None:
    """Build TARGETS (names, globs like 'model:*', or kind prefixes like data:)."""
    from .options import BuildOptions, parse_resources

    options = BuildOptions(
        jobs=_parse_jobs(jobs),
        dry_run=dry_run,
        keep_going=keep_going,
        force=force,
        force_all=force_all,
        store=not no_cache,
        restore=not no_restore,
        verbose=verbose,
        wait=wait,
        resources=parse_resources(resources),
        remote=remote,
        pull=pull,
        push=push,
        executor="dask" if dask_address and executor is None else executor,
        dask_address=dask_address,
        dask_mode=dask_mode,
    )
    ws = _workspace()
    if question or dry_run:
        _plan_command(ws, targets, options, question=question, as_json=as_json)
        return
    from .model import Outcome

    events: Any
    if as_json:
        from .report import JsonReporter

        events = JsonReporter()
    elif sys.stdout.isatty() and not verbose:
        from .report import RichReporter

        events = RichReporter(silent=silent)
    else:
        from .report import PlainReporter

        events = PlainReporter(silent=silent)
    result = ws.build(targets, options=options, events=events)
    if result.pushed and not (as_json or silent):
        click.echo(f"mlbuild: pushed {result.pushed}", err=True)
    if result.interrupted:
        sys.exit(130)
    if not result.ok:
        failed = [t.target for t in result.targets if t.outcome is Outcome.FAILED]
        if not as_json:
            what = "rejected by a check or gate" if result.exit_code == 3 else "failed"
            click.echo(
                f"mlbuild: error: {len(failed)} target(s) {what}: {', '.join(failed)}", err=True
            )
        sys.exit(result.exit_code)


def _parse_jobs(text: str | None) -> int | None:
    if text is None or text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"bad --jobs value {text!r}", hint="use a positive integer or 'auto'")
    return int(text)


def _plan_command(
    ws: Workspace, targets: tuple[str, ...], options: Any, *, question: bool, as_json: bool
) -> None:
    from .model import Action

    decisions = ws.plan(targets, options)
    stale = [d for d in decisions if d.action is not Action.FRESH]
    if as_json:
        _emit_json(
            {
                "stale": bool(stale),
                "targets": [
                    {
                        "target": d.target,
                        "action": d.action.value,
                        "key": d.key,
                        "reasons": [r.to_json() for r in d.reasons],
                    }
                    for d in decisions
                ],
            }
        )
    elif not question:
        for d in stale:
            verb = "would restore" if d.action is Action.RESTORE else "would run"
            why = "; ".join(r.describe() for r in d.reasons)
            click.echo(f"{verb:13} {d.target}  ({why})")
        if not stale:
            click.echo("mlbuild: nothing to do, everything is fresh")
    if question and stale:
        sys.exit(1)


# ------------------------------------------------------------------------------ queries


@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def status(targets: tuple[str, ...], as_json: bool) -> None:
    """Each target: fresh / stale / restorable / never-built, with every reason."""
    entries = _workspace().status(targets)
    if as_json:
        _emit_json(
            {
                "targets": [
                    {
                        "target": e.target,
                        "status": e.status.value,
                        "reasons": [r.to_json() for r in e.reasons],
                        "undeclared_reads": list(e.undeclared),
                    }
                    for e in entries
                ]
            }
        )
        return
    width = max((len(e.target) for e in entries), default=0)
    for e in entries:
        texts = [r.describe() for r in e.reasons] + [_undeclared_text(e.undeclared)]
        reason = "; ".join(t for t in texts if t)
        click.echo(f"{e.target:<{width}}  {e.status.value:<11}  {reason}".rstrip())


def _undeclared_text(paths: tuple[str, ...]) -> str:
    """What a target's key does not cover (its last build's undeclared reads), or ""."""
    if not paths:
        return ""
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return f"read {shown}, which it does not declare: its key does not cover it"


@cli.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def explain(target: str, as_json: bool) -> None:
    """Every reason TARGET is stale, as a cause tree (`explain` and `why` are the same)."""
    tree = _workspace().explain(target)
    if as_json:
        _emit_json(_explanation_json(tree))
        return
    for line in _explanation_lines(tree, ""):
        click.echo(line)


cli.add_command(explain, name="why")


def _explanation_json(node: Explanation) -> dict[str, Any]:
    d = node.decision
    return {
        "target": d.target,
        "action": d.action.value,
        "key": d.key,
        "reasons": [{**r.to_json(), **_code_diff(node, r)} for r in d.reasons],
        "undeclared_reads": list(node.undeclared),
        "upstream": [_explanation_json(u) for u in node.upstream],
    }


def _code_diff(node: Explanation, reason: Reason) -> dict[str, str]:
    """The diff of a changed code file, under its `code` reason only: a script that is
    also a declared dep has a `dep` reason too, and its diff is shown once."""
    from .model import ReasonKind

    diff = node.code_diffs.get(reason.subject)
    return {"diff": diff} if diff and reason.kind is ReasonKind.CODE else {}


def _explanation_lines(node: Explanation, indent: str) -> list[str]:
    d = node.decision
    label = {"fresh": "is fresh", "restore": "would be restored from the cache", "run": "would run"}
    lines = [f"{indent}{d.target} {label[d.action.value]}"]
    for r in d.reasons:
        lines.append(f"{indent}  - {r.describe()}")
        diff = _code_diff(node, r).get("diff")
        if diff:
            lines.extend(f"{indent}      {line}" for line in diff.splitlines())
    if node.undeclared:
        lines.append(f"{indent}  ! its last build {_undeclared_text(node.undeclared)}")
    for up in node.upstream:
        lines.extend(_explanation_lines(up, indent + "  "))
    return lines


@cli.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def list_(as_json: bool) -> None:
    """Every target with its kind, deps and outs."""
    ws = _workspace()
    rows = [ws.pipeline.targets[name] for name in ws.graph.order]
    if as_json:
        _emit_json({"targets": [_spec_json(s, full=False) for s in rows]})
        return
    width = max((len(s.name) for s in rows), default=0)
    for s in rows:
        deps = ", ".join(d.value for d in s.deps) or "-"
        outs = ", ".join(s.outs) or "-"
        click.echo(f"{s.name:<{width}}  deps: {deps}  outs: {outs}")


@cli.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def show(target: str, as_json: bool) -> None:
    """One target, fully resolved (interpolated command, deps, params, env)."""
    ws = _workspace()
    names = ws.graph.select([target])
    if len(names) > 1:
        raise UsageError(
            f"{target!r} matches {len(names)} targets; show takes one",
            hint="use `mlbuild list` for several",
        )
    spec = ws.pipeline.targets[names[0]]
    data = _spec_json(spec, full=True)
    data["code"] = ws.code_deps(spec.name)
    data["undeclared_reads"] = ws.undeclared_reads(spec.name)
    if as_json:
        _emit_json(data)
    else:
        for key, value in data.items():
            empty = value in (None, [], {}, "", 0, False) and key != "name"
            if empty or key == "undeclared_reads":
                continue
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            click.echo(f"{key:9} {text}")
        if spec.cmd and not data["code"]:
            # Never silently empty: say that no script was seen, so a missing one is listed.
            click.echo(f"{'code':9} none found in this command; list the scripts it runs in deps")
        for path in data["undeclared_reads"]:
            click.echo(f"{'reads':9} {path}, which it does not declare: its key does not cover it")


def _spec_json(spec: Any, *, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind,
        "deps": [{"kind": d.kind.value, "value": d.value} for d in spec.deps],
        "outs": list(spec.outs),
    }
    if full:
        data.update(
            cmd=list(spec.cmd) if spec.cmd else None,
            python=spec.python,
            params=dict(spec.params),
            env=dict(spec.env),
            secrets={name: f"${source}" for name, source in spec.secrets.items()},
            packages=list(spec.packages),
            resources=dict(spec.resources),
            always=spec.always,
            retries=spec.retries,
            desc=spec.desc,
            metrics=list(spec.metrics),
            checks=[c.to_json() for c in spec.checks],
            gate=[g.to_json() for g in spec.gates],
            promote=None
            if spec.promote is None
            else {**spec.promote.to_json(), "candidates": list(spec.promote.candidates)},
            defined=str(spec.pos),
        )
    return data


@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "mermaid"]), default="text")
def graph(targets: tuple[str, ...], fmt: str) -> None:
    """The DAG as a text tree, Graphviz DOT or Mermaid."""
    ws = _workspace()
    g = ws.graph
    names = g.closure(ws.select(targets))
    if fmt == "dot":
        click.echo("digraph mlbuild {\n  rankdir=LR;")
        for n in names:
            click.echo(f'  "{n}";')
        for n in names:
            for d in g.deps[n]:
                click.echo(f'  "{d}" -> "{n}";')
        click.echo("}")
    elif fmt == "mermaid":
        ids = {n: f"t{i}" for i, n in enumerate(names)}
        click.echo("graph LR")
        for n in names:
            click.echo(f'  {ids[n]}["{n}"]')
        for n in names:
            for d in g.deps[n]:
                click.echo(f"  {ids[d]} --> {ids[n]}")
    else:
        wanted = set(names)
        roots = [n for n in names if not any(n in g.deps[m] for m in wanted)]

        def walk(n: str, prefix: str, seen: set[str]) -> None:
            for i, d in enumerate(g.deps[n]):
                last = i == len(g.deps[n]) - 1
                mark = "└── " if last else "├── "
                again = " (see above)" if d in seen and g.deps[d] else ""
                click.echo(f"{prefix}{mark}{d}{again}")
                if not again:
                    seen.add(d)
                    walk(d, prefix + ("    " if last else "│   "), seen)

        seen: set[str] = set()
        for r in roots:
            click.echo(r)
            walk(r, "", seen)


@cli.command()
@click.argument("targets", nargs=-1)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "md"]), default="table", help="Output."
)
@click.option("--allow-dirty", is_flag=True, help="Accept builds from a dirty git tree.")
@click.option("--require-signatures", is_flag=True, help="An unsigned manifest is a violation.")
@click.option(
    "--trusted-key", "trusted", multiple=True, metavar="FILE", help="A public key to accept."
)
def audit(
    targets: tuple[str, ...],
    fmt: str,
    allow_dirty: bool,
    require_signatures: bool,
    trusted: tuple[str, ...],
) -> None:
    """Verify TARGETS and their whole upstream against their manifests; exit 6 on a violation."""
    report = _workspace().audit(
        targets,
        allow_dirty=allow_dirty,
        require_signatures=require_signatures,
        trusted_keys=trusted,
    )
    if fmt == "json":
        _emit_json(report.to_json())
    else:
        header = ("target", "check", "subject", "expected", "found")
        rows = [(f.target, f.check, f.subject, f.expected, f.found) for f in report.findings]
        if fmt == "md":
            click.echo("| target | manifest |\n|---|---|")
            for name in report.targets:
                click.echo(f"| {name} | {report.manifests.get(name) or '-'} |")
            click.echo("")
            click.echo("| " + " | ".join(header) + " |")
            click.echo("|" + "---|" * len(header))
            for row in rows:
                click.echo("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        else:
            for row in rows:
                click.echo("  ".join(row))
        verdict = "ok" if report.ok else f"{len(report.findings)} violation(s)"
        suffix = "" if fmt == "table" else "\n"
        click.echo(f"{suffix}audit: {len(report.targets)} target(s): {verdict}")
    if not report.ok:
        sys.exit(6)


@cli.command()
@click.argument("target")
@click.option("--manifest", "ref", metavar="ID", help="Re-run this earlier build (id or prefix).")
@click.option(
    "--tolerance",
    "tolerances",
    multiple=True,
    metavar="METRIC=DELTA",
    help="A metric may move by at most DELTA (repeatable).",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default=None,
    help="Where the job runs (default: executor: in mlbuild.yaml, else local).",
)
@click.option("--dask-address", metavar="ADDR", help="The Dask scheduler (tcp://HOST:8786).")
@click.option(
    "--dask-mode",
    type=click.Choice(["shared", "remote"]),
    default=None,
    help="Workers share the workspace, or get data through the remote cache.",
)
@click.option("-v", "--verbose", is_flag=True, help="Stream command output live.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def reproduce(
    target: str,
    ref: str | None,
    tolerances: tuple[str, ...],
    executor: str | None,
    dask_address: str | None,
    dask_mode: str | None,
    verbose: bool,
    as_json: bool,
) -> None:
    """Re-run TARGET's recorded build in a scratch copy of its inputs and compare every out:
    exit 0 if reproducible, 6 if an out differs, 1 if the re-run failed."""
    from .options import BuildOptions
    from .reproduce import parse_tolerances
    from .reproduce import reproduce as run_reproduction

    options = BuildOptions(
        verbose=verbose,
        executor="dask" if dask_address and executor is None else executor,
        dask_address=dask_address,
        dask_mode=dask_mode,
    )
    result = run_reproduction(
        _workspace(),
        target,
        manifest=ref,
        tolerances=parse_tolerances(tolerances),
        options=options,
        on_output=lambda t, line: click.echo(f"[{t}] {line}", err=as_json),
        warn=lambda text: click.echo(f"mlbuild: warning: {text}", err=True),
    )
    if as_json:
        _emit_json(result.to_json())
    else:
        for line in result.lines():
            click.echo(line)
    if result.exit_code:
        sys.exit(result.exit_code)


@cli.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def lineage(target: str, as_json: bool) -> None:
    """The upstream tree of TARGET as recorded: digests, manifest ids, who and when."""
    tree = _workspace().lineage(target)
    if as_json:
        _emit_json(tree)
        return
    if sys.stdout.isatty():
        from .report import lineage_tree

        lineage_tree(tree)
        return
    for line in _lineage_lines(tree, ""):
        click.echo(line)


def _lineage_label(node: dict[str, Any]) -> str:
    if node.get("corrupt"):
        return f"CORRUPT manifest {node['manifest']} ({node['corrupt']})"
    if node.get("missing"):
        return f"MISSING manifest {node['manifest']}"
    head = f"{node['target']}  {node['manifest'][:19]}…  {node['status']} by {node['who']}"
    return head + f" at {node['when']}" + ("  (see above)" if node.get("seen") else "")


def _lineage_lines(node: dict[str, Any], indent: str) -> list[str]:
    from .audit import lineage_leaves

    lines = [indent + _lineage_label(node)]
    lines.extend(
        f"{indent}    {kind} {path}  {digest}" for kind, path, digest in lineage_leaves(node)
    )
    for up in node.get("upstream", []):
        lines.extend(_lineage_lines(up, indent + "  "))
    return lines


@cli.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def history(target: str, as_json: bool) -> None:
    """Past builds and restores of TARGET, newest first."""
    from .manifest import ManifestError

    ws = _workspace()
    rows = ws.history(target)
    store = ws.manifest_store
    for skipped in store.index_problems(ws.graph.select([target])[0]):
        click.echo(f"mlbuild: warning: {skipped.message}", err=True)
    if as_json:
        builds: list[dict[str, Any]] = []
        for mid, doc, problem in rows:
            build = {"id": mid, "manifest": doc, "missing": doc is None}
            if problem is not None and doc is None and problem != "manifest file missing":
                build["corrupt"] = problem
            builds.append(build)
        _emit_json({"builds": builds})
        return
    for mid, doc, problem in rows:
        if doc is None:
            click.echo(f"{mid}  ({problem})")
            continue
        try:
            doc = store.view(doc)  # a restore shows its build's params and metrics
        except ManifestError as exc:
            click.echo(f"{mid}  (the build it restores is unusable: {exc.subject}: {exc.found})")
            continue
        params = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(doc["params"].items()))
        metrics = doc.get("metrics") or {}
        shown = ", ".join(f"{k}={v}" for k, v in sorted(metrics.items()))
        click.echo(
            f"{mid[:19]}…  {doc['finished']}  {doc['status']:8}  {params or '-'}"
            + (f"  [{shown}]" if shown else "")
        )


@cli.command()
@click.argument("target")
@click.option("--to", "to", metavar="ID", help="The manifest to roll back to (id or prefix).")
def rollback(target: str, to: str | None) -> None:
    """Restore an earlier build of TARGET from the cache, running nothing."""
    done = _workspace().rollback(target, to)
    if done.already_current:
        click.echo(f"{done.target} is already current at {done.to}: nothing to roll back")
        return
    click.echo(f"rolled {done.target} back to {done.to}; recorded as {done.manifest}")
    click.echo("the next build rebuilds it unless its inputs match that build again")
    if done.stale:
        click.echo(
            f"stale now, built from the outs it replaced: {', '.join(done.stale)} "
            "(see `mlbuild status`)"
        )


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def diff(a: str, b: str, as_json: bool) -> None:
    """What differs between two builds (manifest ids or unique prefixes)."""
    from .manifest import diff_manifests

    ws = _workspace()
    id_a, doc_a = ws.resolve_manifest(a)
    id_b, doc_b = ws.resolve_manifest(b)
    changes = diff_manifests(doc_a, doc_b)
    if as_json:
        _emit_json({"a": id_a, "b": id_b, "differences": changes})
        return
    click.echo(f"a: {id_a} ({doc_a.get('target')}, {doc_a.get('finished')})")
    click.echo(f"b: {id_b} ({doc_b.get('target')}, {doc_b.get('finished')})")
    for c in changes:
        click.echo(f"{c['field']:9} {c['key']}: {json.dumps(c['a'])} -> {json.dumps(c['b'])}")
    if not changes:
        click.echo("no differences in deps, params, code, env, packages, outs or metrics")


# ------------------------------------------------------------------------------ remote


@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--remote", metavar="URL", help="Remote cache (fsspec URL) instead of remote:.")
@click.option("-j", "--jobs", default=None, metavar="N", help="Parallel transfers (x2).")
def push(targets: tuple[str, ...], remote: str | None, jobs: str | None) -> None:
    """Upload the current builds of TARGETS (all by default): objects, manifests, then
    run-cache entries. What the remote already has is not sent again."""
    from .options import BuildOptions
    from .report import TransferProgress

    with TransferProgress("pushing builds") as bar:
        stats = _workspace().push(
            targets, BuildOptions(jobs=_parse_jobs(jobs), remote=remote), progress=bar.update
        )
    click.echo(f"pushed {stats.describe()}")


@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--remote", metavar="URL", help="Remote cache (fsspec URL) instead of remote:.")
@click.option("-j", "--jobs", default=None, metavar="N", help="Parallel transfers.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines events on stdout.")
def pull(targets: tuple[str, ...], remote: str | None, jobs: str | None, as_json: bool) -> None:
    """Restore TARGETS (and their upstream) from the remote by build key, verifying every
    object; runs no command. Exit 1 if some target is in neither cache."""
    from .model import Outcome
    from .options import BuildOptions

    events: Any
    if as_json:
        from .report import JsonReporter

        events = JsonReporter()
    elif sys.stdout.isatty():
        from .report import RichReporter

        events = RichReporter(silent=False)  # a live bar over the targets being restored
    else:
        from .report import PlainReporter

        events = PlainReporter(silent=False)
    result = _workspace().pull(
        targets, BuildOptions(jobs=_parse_jobs(jobs), remote=remote), events=events
    )
    if result.interrupted:
        sys.exit(130)
    missing = [t.target for t in result.targets if t.outcome is Outcome.SKIPPED]
    if missing:
        if not as_json:
            click.echo(
                f"mlbuild: error: {len(missing)} target(s) not available from the caches: "
                f"{', '.join(missing)}",
                err=True,
            )
        sys.exit(1)


@cli.group()
def cache() -> None:
    """The local cache (or, with --remote, the remote one)."""


_REMOTE_OPTION = click.option(
    "--remote",
    "remote",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[URL]",
    help="The remote cache instead (mlbuild.yaml's remote:, or URL).",
)


@cache.command(name="verify")
@_REMOTE_OPTION
@click.option("--repair", is_flag=True, help="Drop corrupt objects and the entries naming them.")
def cache_verify(remote: str | None, repair: bool) -> None:
    """Re-hash every cache object and check that every run-cache entry's objects exist;
    exit 6 on a problem (0 after --repair)."""
    from .options import BuildOptions

    report = _workspace().verify_cache(
        remote=remote is not None, repair=repair, options=BuildOptions(remote=remote or None)
    )
    for rel, got in report.corrupt:
        click.echo(f"corrupt  {rel}  (its bytes hash to {got})")
    for entry, digest in report.missing:
        click.echo(f"missing  {entry} names {digest}, which is not there")
    click.echo(
        f"checked {report.checked} object(s): {len(report.corrupt)} corrupt, "
        f"{len(report.missing)} missing"
    )
    if repair and not report.ok:
        click.echo(
            f"dropped {report.dropped_objects} object(s) and {report.dropped_runs} run-cache "
            "entr(y/ies) naming them: those builds are no longer restorable from this cache"
        )
    elif not report.ok:
        raise VerificationError(
            f"{len(report.corrupt)} corrupt and {len(report.missing)} missing cache object(s)",
            hint="mlbuild cache verify --repair drops them and the entries naming them",
        )


@cli.command()
@click.option("--keep", default=3, show_default=True, help="Builds kept per target.")
@_REMOTE_OPTION
@click.option("-n", "--dry-run", is_flag=True, help="Say what would go; delete nothing.")
def gc(keep: int, remote: str | None, dry_run: bool) -> None:
    """Delete cache objects not needed by the lock file or each target's last N builds."""
    from .options import BuildOptions

    report = _workspace().gc(
        keep=keep,
        remote=remote is not None,
        dry_run=dry_run,
        options=BuildOptions(remote=remote or None),
    )
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {report.removed_objects} object(s) ({report.removed_bytes / 2**20:.1f} MiB) "
        f"and {report.removed_runs} run-cache entr(y/ies); kept {report.kept_objects} "
        f"object(s) and {report.kept_runs} entr(y/ies)"
        + (
            f"; {verb} {report.removed_temporaries} leftover temporary file(s)"
            if report.removed_temporaries
            else ""
        )
    )


# ------------------------------------------------------------------------------ experiments


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _columns(rows: list[list[str]]) -> list[str]:
    """Rows of cells as aligned text lines (first row: the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


@cli.group()
def metrics() -> None:
    """Metrics of targets: a table, or what changed."""


@metrics.command(name="show")
@click.argument("targets", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def metrics_show(targets: tuple[str, ...], as_json: bool) -> None:
    """TARGETS × metrics of their current builds (all targets with metrics by default)."""
    ws = _workspace()
    table = ws.metrics(targets)
    # Metrics of a target that is not fresh describe a build its inputs have moved on from
    # (after a rollback upstream, say): said, never shown as if current.
    stale = sorted(
        e.target for e in ws.status(list(table)) if e.target in table and e.status.value != "fresh"
    )
    if as_json:
        _emit_json({"metrics": table, "stale": stale})
        return
    if not table:
        click.echo("no metrics recorded: declare metrics: [FILE] on a target and build it")
        return
    names = sorted({m for values in table.values() for m in values})
    rows = [["target", *names]]
    for t in table:
        label = f"{t} (stale)" if t in stale else t
        rows.append([label, *(_fmt(table[t].get(m)) for m in names)])
    for line in _columns(rows):
        click.echo(line)
    if stale:
        click.echo(
            f"stale: {', '.join(stale)}: metrics of a build whose inputs have changed since; "
            "`mlbuild status` says why"
        )


@metrics.command(name="diff")
@click.argument("rev", required=False)
@click.option("-t", "--targets", "patterns", multiple=True, help="Only these targets (repeat).")
@click.option("--all", "all_", is_flag=True, help="Show unchanged metrics too.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def metrics_diff(rev: str | None, patterns: tuple[str, ...], all_: bool, as_json: bool) -> None:
    """Metrics now vs each target's previous build, or vs the lock file at git REV."""
    changes = _workspace().metrics_diff(rev, patterns, all_=all_)
    base = rev or "previous build"
    if as_json:
        _emit_json({"against": base, "changes": [c.to_json() for c in changes]})
        return
    if not changes:
        click.echo(f"no metric changed since {base}")
        return
    rows = [["target", "metric", base, "now", "change", "%"]]
    for c in changes:
        rel = c.relative
        rows.append(
            [
                c.target,
                c.metric,
                _fmt(c.old),
                _fmt(c.new),
                "-" if c.delta is None else f"{c.delta:+.6g}",
                "-" if rel is None else f"{rel * 100:+.2f}%",
            ]
        )
    for line in _columns(rows):
        click.echo(line)


@cli.group()
def params() -> None:
    """Parameters: what changed since the last build."""


@params.command(name="diff")
@click.argument("rev", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
def params_diff(rev: str | None, as_json: bool) -> None:
    """Params whose values differ from the last build (or the lock file at git REV), and
    the targets each change makes stale."""
    changes = _workspace().params_diff(rev)
    base = rev or "last build"
    if as_json:
        _emit_json({"against": base, "changes": [c.to_json() for c in changes]})
        return
    if not changes:
        click.echo(f"no param changed since {base}")
        return
    rows = [["param", base, "now", "stale"]]
    for c in changes:
        old = "(absent)" if c.change == "added" else json.dumps(c.old)
        new = "(absent)" if c.change == "removed" else json.dumps(c.new)
        rows.append([c.key, old, new, ", ".join(c.stale)])
    for line in _columns(rows):
        click.echo(line)


@cli.command()
@click.option(
    "-o",
    "--output",
    default="report.html",
    show_default=True,
    metavar="FILE",
    help="Where to write the page ('-' for stdout).",
)
@click.option("--json", "as_json", is_flag=True, help="The report's data as JSON instead.")
def report(output: str, as_json: bool) -> None:
    """One self-contained HTML page: the DAG, status, metrics, sweeps, checks and drift."""
    data = _workspace().report_data()
    if as_json:
        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    else:
        from .htmlreport import render_html

        text = render_html(data)
    _write_output(text, None if output == "-" else output)
    if output != "-":
        click.echo(f"wrote {output}", err=True)


@cli.command()
@click.argument("target")
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
def card(target: str, output: str | None) -> None:
    """A Markdown model card for TARGET, generated from its provenance."""
    text = _workspace().card(target)
    _write_output(text, output)


@cli.group()
def key() -> None:
    """Ed25519 keys for signing manifests."""


@key.command(name="generate")
@click.argument("path")
def key_generate(path: str) -> None:
    """Write PATH.key (private, mode 0600) and PATH.pub (public)."""
    from .signing import generate_keypair

    private, public, keyid = generate_keypair(path)
    click.echo(f"wrote {private} (keep it secret) and {public}; key id {keyid}")
    click.echo(f"sign builds: export MLBUILD_SIGNING_KEY={private}")


@cli.group()
def manifest() -> None:
    """Provenance records: one per build or restore of a target."""


@manifest.command(name="show")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="The manifest itself, with its id.")
def manifest_show(target: str, as_json: bool) -> None:
    """TARGET's current manifest: how its outs were made, from what, by whom."""
    ws = _workspace()
    mid, doc = ws.manifest(target)
    if as_json:
        _emit_json({"id": mid, "manifest": doc})
        return
    # A restore is shown with the facts of the build it restores: only its who, when and
    # where are its own (the record itself is --json).
    for line in _manifest_lines(mid, ws.manifest_store.view(doc)):
        click.echo(line)


def _manifest_lines(mid: str, doc: dict[str, Any]) -> list[str]:
    git = doc["environment"].get("git") or {}
    lines = [
        f"manifest  {mid}",
        f"target    {doc['target']} ({doc['status']})",
        f"key       {doc['key']}",
        f"when      {doc['started']} .. {doc['finished']} ({doc['seconds']:.2f}s)",
        f"who       {doc['user']}@{doc['host']}, mlbuild {doc['mlbuild']}",
        f"git       {git.get('commit') or '-'}" + (" (dirty)" if git.get("dirty") else ""),
    ]
    if doc.get("restored_from"):
        lines.append(f"restored  from {doc['restored_from']}")
    lines.extend(f"command   {c}" for c in doc["command"] or ())
    if doc["python"]:
        lines.append(f"python    {doc['python']}")
    lines.extend(f"code      {p}  {d}" for p, d in sorted(doc["code"].items()))
    for dep in doc["deps"]:
        link = ""
        if "target" in dep:
            link = f"  <- {dep['target']} {dep.get('manifest') or '(no manifest)'}"
        lines.append(f"dep       {dep['path']}  {dep['xxh3']}{link}")
    lines.extend(f"param     {k} = {json.dumps(v)}" for k, v in sorted(doc["params"].items()))
    lines.extend(f"env       {k} = {v}" for k, v in sorted(doc["env"].items()))
    lines.extend(f"out       {o['path']}  {o['sha256']}  ({o['size']} bytes)" for o in doc["outs"])
    metrics = doc.get("metrics") or {}
    lines.extend(f"metric    {k} = {json.dumps(v)}" for k, v in sorted(metrics.items()))
    promotion = doc.get("promotion")
    if promotion:
        scores = ", ".join(f"{k} {v}" for k, v in sorted((promotion.get("scores") or {}).items()))
        lines.append(f"promoted  {promotion.get('winner')} by {promotion.get('by')} ({scores})")
    for g in doc.get("gates") or []:
        lines.append(f"gate      {'passed' if g.get('passed') else 'FAILED'}: {g.get('message')}")
    for c in doc.get("checks") or []:
        verdict = "passed" if c.get("passed") else f"FAILED ({c.get('severity')})"
        lines.append(f"check     {c.get('out')} {c.get('check')}: {verdict}: {c.get('message')}")
    return lines


@manifest.command(name="export")
@click.argument("target")
@click.option(
    "--format", "fmt", type=click.Choice(["in-toto", "json"]), default="in-toto", help="Format."
)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
def manifest_export(target: str, fmt: str, output: str | None) -> None:
    """Export TARGET's provenance: an in-toto Statement v1 (SLSA Provenance v1), in a signed
    DSSE envelope when a signing key is configured; or the raw manifest (json)."""
    from .manifest import ManifestError, dsse_envelope, in_toto_statement

    ws = _workspace()
    try:
        mid, doc = ws.manifest(target)  # strict: an edited or corrupt manifest is refused
    except ManifestError as exc:
        if exc.check != "manifest-id":
            raise
        raise VerificationError(
            f"manifest {exc.expected} of {target} ({exc.subject}) was modified after it was "
            "written; refusing to export",
            hint="run `mlbuild audit` to see what changed",
        ) from None
    if fmt == "json":
        data: dict[str, Any] = {"id": mid, "manifest": doc}
    else:
        # A restore attests the facts of the build it restores (ManifestStore.view).
        data = in_toto_statement(mid, ws.manifest_store.view(doc))
        signer = ws.signing_key()
        if signer is not None:
            data = dsse_envelope(data, signer)
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    _write_output(text, output)


@cli.command()
def validate() -> None:
    """Check mlbuild.yaml (syntax, references, cycles) and exit; for pre-commit hooks."""
    ws = _workspace()
    _ = ws.graph
    click.echo(f"{os.path.relpath(ws.config_path)}: ok ({len(ws.pipeline.targets)} targets)")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of mlbuild.yaml."""
    from .schema import SCHEMA

    _emit_json(SCHEMA)


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing mlbuild.yaml.")
def init(force: bool) -> None:
    """Write a starter mlbuild.yaml in the current (or -C) directory."""
    from .schema import STARTER

    path = os.path.join(_base_dir(), STATE.file or "mlbuild.yaml")
    if os.path.exists(path) and not force:
        raise UsageError(f"{path} already exists", hint="use --force to overwrite it")
    with open(path, "w", encoding="utf-8") as f:
        f.write(STARTER)
    click.echo(f"wrote {path}; try `mlbuild list`")


# ------------------------------------------------------------------------------ entry point


def _route(argv: list[str]) -> list[str]:
    """Insert ``build`` where the first word is not a subcommand (``mlbuild model:prod``)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _GROUP_VALUE_OPTS:
            i += 2
            continue
        if arg in _GROUP_FLAGS or any(
            arg.startswith(o + "=") for o in _GROUP_VALUE_OPTS if o.startswith("--")
        ):
            if arg in ("--help", "-h", "--version"):
                return argv
            i += 1
            continue
        if arg.startswith(("-C", "-f")) and len(arg) > 2:
            i += 1
            continue
        break
    if i < len(argv) and (argv[i] in cli.commands or _near_command(argv[i])):
        return argv
    return [*argv[:i], "build", *argv[i:]]


def _near_command(word: str) -> bool:
    """A plain word close to a subcommand (``stauts``): `_Commands` decides whether it is a
    target or a typo. Words with ``:``, globs or dots are target patterns, never commands."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", word):
        return False
    from .suggest import suggest

    return suggest(word, cli.commands) is not None


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: maps every outcome to the documented exit code."""
    # A short-lived process that builds large acyclic structures: the cyclic GC would scan
    # them over and over (16-20% of a 10,000-target no-op) for nothing to free.
    pygc.set_threshold(100_000, 50, 50)
    try:
        args = _route(list(sys.argv[1:] if argv is None else argv))
        with interrupts.stop_on_signals():  # SIGTERM/SIGHUP stop the build as Ctrl-C does
            cli.main(args=args, prog_name="mlbuild", standalone_mode=False)
    except MlbuildError as exc:
        if STATE.debug:
            import traceback

            traceback.print_exc()
        click.echo(f"mlbuild: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:  # click's wrapper of a KeyboardInterrupt
        click.echo(f"mlbuild: {interrupts.message(exc)}", err=True)
        sys.exit(interrupts.exit_code(exc))
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except (OSError, RecursionError) as exc:
        # The environment's faults (disk full, read-only, unreadable): one line, no trace.
        if STATE.debug:
            import traceback

            traceback.print_exc()
        fault = environment_fault(exc)
        click.echo(f"mlbuild: error: {fault}", err=True)
        sys.exit(fault.exit_code)
    except KeyboardInterrupt as exc:  # Ctrl-C 130; SIGTERM 143, SIGHUP 129 (interrupts.py)
        click.echo(f"mlbuild: {interrupts.message(exc)}", err=True)
        sys.exit(interrupts.exit_code(exc))
    except SystemExit:
        raise
    except BaseException:
        import traceback

        traceback.print_exc()
        click.echo(
            "mlbuild: internal error: this is a bug in mlbuild; please report it with the "
            "traceback above",
            err=True,
        )
        sys.exit(EXIT_BUG)
    sys.exit(0)
