"""mlbuild.yaml in, a validated `Pipeline` out: everything mlbuild knows before it decides.

Modules, in the order a load uses them:

=================  ==========================================================================
``yaml``           YAML with a position for every value, the parse cache, alias-bomb limits
``access``         typed reads of the document; each failure names its line
``schema``         the keys, declared once: the JSON Schema and the loader's key tables
``settings``       version, vars, env and secrets, executor, keys, remote, default
``params``         params files (YAML, JSON, TOML) or the inline mapping, merged
``matrix``         matrix expansion, include/exclude, values from a params list
``paths``          finding the config, path safety, reserved outs, the glob dialect
``interpolate``    the ``${...}`` engine; ``shell``: where a quoted value lands in a command
``ml``             checks, gates and promotion of a target
``specs``          the typed result: Pipeline, TargetSpec, DepSpec, CheckSpec, GateSpec...
``loader``         the passes over the file, in their order
=================  ==========================================================================

Other modules import from here (``from .config import Pipeline``); PyYAML is imported only
when a YAML file must be parsed.
"""

from __future__ import annotations

from .loader import load_pipeline
from .ml import SpecError, parse_checks, parse_gates, parse_promote
from .paths import CONFIG_NAME, STATE_DIR, check_inside, find_config, normalize_path
from .schema import SCHEMA, SCHEMA_VERSION, STARTER, TARGET_KEYS, TOP_KEYS
from .specs import (
    TABULAR_EXTENSIONS,
    CheckSpec,
    DepKind,
    DepSpec,
    GateSpec,
    Pipeline,
    PromoteSpec,
    TargetSpec,
    is_tabular,
)
from .yaml import yaml_graph_problem

__all__ = [
    "CONFIG_NAME",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STARTER",
    "STATE_DIR",
    "TABULAR_EXTENSIONS",
    "TARGET_KEYS",
    "TOP_KEYS",
    "CheckSpec",
    "DepKind",
    "DepSpec",
    "GateSpec",
    "Pipeline",
    "PromoteSpec",
    "SpecError",
    "TargetSpec",
    "check_inside",
    "find_config",
    "is_tabular",
    "load_pipeline",
    "normalize_path",
    "parse_checks",
    "parse_gates",
    "parse_promote",
    "yaml_graph_problem",
]
