"""Where a workspace's files are, from the command line's -C and -f: the config, its root and
its lock file. Light on purpose (nothing of the loader): the no-op fast path (noop.py)
needs these paths before anything else is imported."""

from __future__ import annotations

import os

from .errors import ConfigError

__all__ = ["CONFIG_NAME", "find_config", "locate"]

CONFIG_NAME = "mlbuild.yaml"


def find_config(start: str) -> str:
    """Walk up from ``start`` to the nearest directory holding mlbuild.yaml."""
    here = os.path.abspath(start)
    while True:
        candidate = os.path.join(here, CONFIG_NAME)
        if os.path.isfile(candidate):
            return candidate
        if os.path.lexists(candidate):
            raise ConfigError(
                f"{candidate} is not a file", hint="it must be the YAML file of the workspace"
            )
        parent = os.path.dirname(here)
        if parent == here:
            raise ConfigError(
                f"no {CONFIG_NAME} in {os.path.abspath(start)} or any parent directory",
                hint="run `mlbuild init` to write a starter file, or pass -C DIR / -f FILE",
            )
        here = parent


def locate(path: str, config: str | None) -> tuple[str, str, str]:
    """``(config_path, root, lock_path)``, absolute: ``config`` if given, else the
    mlbuild.yaml in ``path`` or its nearest parent holding one. One lock file per config
    file, beside it (mlbuild.yaml → mlbuild.lock), so two pipelines in one directory never
    prune each other's entries."""
    if config is not None:
        config_path = os.path.abspath(config)
    else:
        direct = os.path.join(path, CONFIG_NAME)
        config_path = os.path.abspath(direct) if os.path.isfile(direct) else find_config(path)
    root = os.path.dirname(config_path)
    stem = os.path.splitext(os.path.basename(config_path))[0]
    return config_path, root, os.path.join(root, stem + ".lock")
