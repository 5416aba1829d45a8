"""The `mlbuild` command (click), one module per group of subcommands::

    main.py         the group, global options (-C, -f, --debug), argv routing, `main`:
                    the only error boundary (errors → one line + `ExitCode`)
    context.py      `Invocation` (click's context object) and output helpers
    build.py        build (-n, -q), status, explain / why
    inspect.py      list, show, graph, validate
    provenance.py   audit, reproduce, lineage, manifest show|export, history, rollback,
                    card, diff
    experiments.py  metrics show|diff, params diff, exp show, report
    cache.py        push, pull, cache verify, gc
    clean.py        clean, unprotect
    plots.py        plots show|diff (mlbuild/plots/ reads the data, render/plots.py draws)
    commit.py       commit (accept the outs in the workspace as a build; rebuild/accept.py)
    completion.py   completion bash|zsh|fish; the target names TARGETS arguments complete
    shells.py       click's shell support, bash taught that `:` is part of a name (lazy)
    project.py      init, schema, key generate

Each command module registers its commands on `main.cli` when imported; this package
imports them all, so ``mlbuild.cli:main`` (the console script) and ``python -m mlbuild``
see every command. Renderers live in mlbuild/render/.
"""

from . import (  # noqa: F401 (registers)
    build,
    cache,
    clean,
    commit,
    completion,
    experiments,
    inspect,
    plots,
    project,
    provenance,
)
from .main import cli, main

__all__ = ["cli", "main"]
