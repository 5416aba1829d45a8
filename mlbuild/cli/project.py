"""Setting a project up: `init` (a starter mlbuild.yaml), `schema` (its JSON Schema) and
`key generate` (an Ed25519 key pair for signing manifests)."""

from __future__ import annotations

import os

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
    """Write a starter mlbuild.yaml in the current (or -C) directory."""
    from ..config.schema import STARTER

    path = os.path.join(invocation.base_dir(), invocation.file or "mlbuild.yaml")
    if os.path.exists(path) and not force:
        raise UsageError(f"{path} already exists", hint="use --force to overwrite it")
    with open(path, "w", encoding="utf-8") as f:
        f.write(STARTER)
    click.echo(f"wrote {path}; try `mlbuild list`")


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
