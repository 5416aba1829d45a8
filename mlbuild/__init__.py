"""mlbuild: make for machine learning.

Public API::

    from mlbuild import Workspace
    result = Workspace(".").build(["model:prod"], jobs=2)

Imports are lazy so that `mlbuild --help` does not pay for the build machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    BuildFailed,
    CheckFailed,
    ConfigError,
    Interrupted,
    LockHeldError,
    MlbuildError,
    NoTargetError,
    UsageError,
    VerificationError,
)

__version__ = "0.1.0"  # the one spelling: pyproject.toml reads it (setuptools dynamic)

__all__ = [
    "BuildFailed",
    "BuildOptions",
    "BuildResult",
    "CheckFailed",
    "ConfigError",
    "Interrupted",
    "LockHeldError",
    "MlbuildError",
    "NoTargetError",
    "Outcome",
    "UsageError",
    "VerificationError",
    "Workspace",
    "__version__",
]

if TYPE_CHECKING:
    from .options import BuildOptions
    from .results import BuildResult, Outcome
    from .workspace import Workspace


def __getattr__(name: str) -> Any:
    if name == "Workspace":
        from .workspace import Workspace

        return Workspace
    if name == "BuildOptions":
        from .options import BuildOptions

        return BuildOptions
    if name in ("BuildResult", "Outcome"):
        from . import results

        return getattr(results, name)
    raise AttributeError(f"module 'mlbuild' has no attribute {name!r}")
