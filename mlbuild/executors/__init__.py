"""Executors run Jobs. Only `local` exists today; Dask comes with the remote cache."""

from __future__ import annotations

from .local import LocalExecutor

__all__ = ["LocalExecutor"]
