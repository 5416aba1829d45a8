"""Setting a project up: `init` (a starter mlbuild.yaml, and .mlbuild/ in .gitignore),
`schema` (its JSON Schema) and `key generate` (an Ed25519 key pair for signing
manifests)."""

from __future__ import annotations

import os
import shlex

import click

from ..errors import UsageError
from .context import Invocation, emit_json, pass_invocation
from .main import cli


@cli.command()
def schema() -> None:
    """Print the JSON Schema of mlbuild.yaml."""
    from ..config.schema import SCHEMA

    emit_json(SCHEMA)


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing mlbuild.yaml.")
@pass_invocation
def init(invocation: Invocation, force: bool) -> None:
    """Write a starter mlbuild.yaml in the current (or -C) directory, and ignore .mlbuild/
    in its .gitignore."""
    from ..config.schema import STARTER

    path = os.path.join(invocation.base_dir(), invocation.file or "mlbuild.yaml")
    if os.path.exists(path) and not force:
        raise UsageError(f"{path} already exists", hint="use --force to overwrite it")
    with open(path, "w", encoding="utf-8") as f:
        f.write(STARTER)
    click.echo(f"wrote {path}")
    ignored = _ignore_state(os.path.dirname(path))
    if ignored is not None:
        click.echo(ignored)
    # The next step as the user must type it: the same -C and -f, else another config.
    words = ["mlbuild"]
    if invocation.directory is not None:
        words += ["-C", invocation.directory]
    if invocation.file is not None:
        words += ["-f", invocation.file]
    click.echo(
        f"next: `{shlex.join([*words, 'list'])}` shows the targets, "
        f"`{shlex.join(words)}` builds them"
    )


def _ignore_state(root: str) -> str | None:
    """Make ``root``/.gitignore ignore mlbuild's state directory (cache, logs, manifests:
    local, and large) as DVC's init does for its cache: appended to an existing file,
    never twice. Returns what was done (None: already ignored). The lock file stays
    tracked: it is the committed record of the builds."""
    from ..store.layout import STATE_DIR

    gitignore = os.path.join(root, ".gitignore")
    try:
        with open(gitignore, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        text = None
    if text is not None:
        spellings = {f"{lead}{STATE_DIR}{tail}" for lead in ("", "/") for tail in ("", "/")}
        if any(line.strip() in spellings for line in text.splitlines()):
            return None
    with open(gitignore, "a", encoding="utf-8") as f:
        f.write(("\n" if text and not text.endswith("\n") else "") + f"{STATE_DIR}/\n")
    if text is None:
        return f"wrote {gitignore} (ignores {STATE_DIR}/: the cache, logs and manifests)"
    return f"added {STATE_DIR}/ to {gitignore}"


@cli.group()
def key() -> None:
    """Ed25519 keys for signing manifests."""


@key.command(name="generate")
@click.argument("path")
def key_generate(path: str) -> None:
    """Write PATH.key (private, mode 0600) and PATH.pub (public)."""
    from ..provenance.signing import generate_keypair

    private, public, keyid = generate_keypair(path)
    click.echo(f"wrote {private} (keep it secret) and {public}; key id {keyid}")
    click.echo(f"sign builds: export MLBUILD_SIGNING_KEY={private}")
