"""The keys of mlbuild.yaml (version 1), declared once: the JSON Schema and the loader's
tables of allowed keys are both made from the declarations below, and the starter file
`mlbuild init` writes.

Each table maps a key to its JSON Schema, in the order the loader lists allowed keys in a
message (``allowed: cmd, python, deps, ...``). The schema serves editors (completion,
squiggles); the loader stays the authority and gives better messages (positions,
did-you-mean), so a schema fragment may be looser than the loader, never stricter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "CHECK_KINDS",
    "CHECK_COMMON_KEYS",
    "CACHE_KEYS",
    "EXECUTOR_KEYS",
    "GATE_BOUNDS",
    "GATE_KEYS",
    "PLOT_DEFAULTS",
    "PLOT_FORMATS",
    "PLOT_KEYS",
    "PLOT_KINDS",
    "PROMOTE_KEYS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SECRET_KEYS",
    "SIGNING_KEYS",
    "STARTER",
    "TARGET_KEYS",
    "TOP_KEYS",
]

SCHEMA_VERSION = 1

_STR_LIST: dict[str, Any] = {
    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
}
_SECRET: dict[str, Any] = {  # env NAME: {from: VAR, secret: true}
    "from": {"type": "string"},
    "secret": {"const": True},
}
_ENV: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
    "additionalProperties": {
        "oneOf": [
            {"type": ["string", "number", "boolean"]},
            {
                "type": "object",
                "required": ["from", "secret"],
                "additionalProperties": False,
                "properties": _SECRET,
            },
        ]
    },
}

_STRICT_INPUTS: dict[str, Any] = {"type": "boolean"}
_STRICT_INPUTS_DOC = (
    "A Python read of a workspace file the target does not declare fails the build "
    "instead of warning"
)

_EXECUTOR: dict[str, Any] = {
    "type": {"enum": ["local", "dask"]},
    "jobs": {"oneOf": [{"const": "auto"}, {"type": "integer", "minimum": 1}]},
    "address": {"type": "string", "description": "Dask scheduler, tcp://HOST:PORT"},
    "mode": {"enum": ["shared", "remote"]},
    "connect_timeout": {
        "type": "number",
        "exclusiveMinimum": 0,
        "description": "Seconds to wait for the Dask scheduler at start (default 10).",
    },
}
_CACHE: dict[str, Any] = {
    "link": {
        "type": "array",
        "items": {"enum": ["reflink", "hardlink", "copy"]},
        "minItems": 1,
        "uniqueItems": True,
        "description": "How outs move between the cache and the workspace: the first "
        "kind that works (default [reflink, copy]).",
    },
}
_SIGNING: dict[str, Any] = {
    "key": {"type": "string", "description": "Ed25519 private key."},
}

_TOP: dict[str, Any] = {
    "version": {"const": SCHEMA_VERSION},
    "default": {**_STR_LIST, "description": "Targets built by a bare `mlbuild`."},
    "params": {
        "description": "Params file(s) (YAML, JSON, TOML), merged in order, or a mapping.",
        "oneOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "string"}},
            {"type": "object"},
        ],
    },
    "vars": {
        "type": "object",
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    },
    "env": {**_ENV, "description": "Env vars given to every command; part of every key."},
    "packages": {**_STR_LIST, "description": "Distributions whose versions join every key."},
    "executor": {"type": "object", "additionalProperties": False, "properties": _EXECUTOR},
    "signing": {"type": "object", "additionalProperties": False, "properties": _SIGNING},
    "cache": {"type": "object", "additionalProperties": False, "properties": _CACHE},
    "trusted_keys": {**_STR_LIST, "description": "Public keys audit accepts."},
    "remote": {"type": "string", "description": "Shared cache: any fsspec URL."},
    "remote_options": {"type": "object", "description": "Passed to the fsspec filesystem."},
    "remote_write": {"type": "boolean", "description": "Push after every build."},
    "strict_inputs": {**_STRICT_INPUTS, "description": _STRICT_INPUTS_DOC + " (default)."},
    "targets": {
        "type": "object",
        # kind:name; neither part is "." or ".." (names are data, never paths)
        "propertyNames": {
            "pattern": ("^(?!\\.\\.?(:|$))(?!.*:\\.\\.?$)[A-Za-z0-9_.\\-]+(:[A-Za-z0-9_.\\-{}]+)?$")
        },
        "additionalProperties": {"$ref": "#/$defs/target"},
    },
}

_MATRIX: dict[str, Any] = {
    "type": "object",
    "properties": {
        "include": {"type": "array", "items": {"type": "object"}},
        "exclude": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": {
        "oneOf": [
            {
                "type": "array",
                "minItems": 1,
                "items": {"type": ["string", "number", "boolean"]},
            },
            {
                "type": "string",
                "pattern": "^\\$\\{\\s*params\\.[^}]+\\}$",
                "description": 'A list in the params: "${params.samples}".',
            },
        ]
    },
}

_PROMOTE: dict[str, Any] = {
    "from": {"type": "string", "description": "Candidate targets (glob)."},
    "by": {"type": "string", "description": "The metric to rank by."},
    "mode": {"enum": ["max", "min"]},
}

_TARGET: dict[str, Any] = {
    "cmd": {**_STR_LIST, "description": "Shell command(s), run with /bin/sh -c."},
    "python": {
        "type": "string",
        "pattern": "^[A-Za-z_][\\w.]*:[A-Za-z_]\\w*$",
        "description": "module:function called with deps, outs, params.",
    },
    "deps": {**_STR_LIST, "description": "Files, directories, globs or targets."},
    "outs": {**_STR_LIST, "description": "Files or directories the target writes."},
    "params": {**_STR_LIST, "description": "Param keys this target reads."},
    "env": _ENV,
    "packages": _STR_LIST,
    "matrix": _MATRIX,
    "resources": {
        "type": "object",
        "additionalProperties": {"type": "integer", "minimum": 0},
    },
    "always": {"type": "boolean"},
    "temp": {
        "type": "boolean",
        "description": "Delete the outs once every dependent in the build succeeded "
        "(kept in the cache; restored when a dependent must run).",
    },
    "metrics": {**_STR_LIST, "description": "JSON/YAML metrics files (also outs)."},
    "plots": {
        "type": "array",
        "items": {"oneOf": [{"type": "string"}, {"$ref": "#/$defs/plot"}]},
        "description": "CSV/TSV/JSON/YAML files to plot (also outs): `mlbuild plots show`.",
    },
    "checks": {"type": "array", "items": {"$ref": "#/$defs/check"}},
    "promote": {
        "type": "object",
        "additionalProperties": False,
        "required": ["from", "by"],
        "properties": _PROMOTE,
    },
    "gate": {
        "oneOf": [
            {"$ref": "#/$defs/gate"},
            {"type": "array", "items": {"$ref": "#/$defs/gate"}},
        ]
    },
    "retries": {"type": "integer", "minimum": 0},
    "strict_inputs": {
        **_STRICT_INPUTS,
        "description": _STRICT_INPUTS_DOC + " (this target; overrides the top level).",
    },
    "desc": {"type": "string"},
}

#: Keys each check kind takes besides ``check``, ``severity`` and ``out``: required, optional.
CHECK_KINDS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "columns": (("columns",), ("strict",)),
    "not_null": (("columns",), ()),
    "unique": (("columns",), ()),
    "range": (("column",), ("min", "max")),
    "allowed": (("column", "values"), ()),
    "rows": ((), ("min", "max")),
    "drift": ((), ("columns", "max_psi", "max_ks", "bins")),
    "python": (("python",), ("args",)),
}

#: Keys every check takes, whatever its kind.
_CHECK_COMMON: dict[str, Any] = {
    "check": {"enum": list(CHECK_KINDS)},
    "severity": {"enum": ["error", "warn"]},
    "out": {"type": "string"},
}
#: Every key some check kind takes besides the common ones.
_CHECK_OPTIONS: dict[str, Any] = {
    "columns": {"oneOf": [{"type": "object"}, _STR_LIST]},
    "column": {"type": "string"},
    "min": {"type": "number"},
    "max": {"type": "number"},
    "values": {"type": "array"},
    "strict": {"type": "boolean"},
    "max_psi": {"type": "number", "exclusiveMinimum": 0},
    "max_ks": {"type": "number", "exclusiveMinimum": 0},
    "bins": {"type": "integer", "minimum": 2, "maximum": 100},
    "python": {"type": "string"},
    "args": {"type": "object"},
}

GATE_BOUNDS = ("min", "max", "max_drop", "max_rise")  # a gate has exactly one
_GATE: dict[str, Any] = {
    "metric": {"type": "string"},
    "min": {"type": "number"},
    "max": {"type": "number"},
    "max_drop": {"type": "number", "minimum": 0},
    "max_rise": {"type": "number", "minimum": 0},
    "vs": {"const": "previous"},
}

#: Plot kinds, each with its default (x, y) columns, as DVC's templates name them (None: x
#: is "step" if the data has it, else the row number; y is the last other column).
PLOT_DEFAULTS: Mapping[str, tuple[str | None, str | None]] = {
    "line": (None, None),
    "scatter": (None, None),
    "bar": (None, None),
    "confusion": ("actual", "predicted"),
    "roc": ("fpr", "tpr"),
    "pr": ("recall", "precision"),
}
PLOT_KINDS = tuple(PLOT_DEFAULTS)
#: The file formats a plot reads, by extension.
PLOT_FORMATS = (".csv", ".tsv", ".json", ".yaml", ".yml")
_PLOT: dict[str, Any] = {
    "path": {"type": "string", "description": "The data file (an out of the target)."},
    "kind": {"enum": list(PLOT_KINDS)},
    "x": {"type": "string", "description": "The x column."},
    "y": {**_STR_LIST, "description": "The y column (line and scatter: one or more)."},
    "title": {"type": "string"},
}

# The loader's tables: the same declarations, as the keys it allows.
TOP_KEYS = tuple(_TOP)
TARGET_KEYS = tuple(_TARGET)
EXECUTOR_KEYS = tuple(_EXECUTOR)
SIGNING_KEYS = tuple(_SIGNING)
CACHE_KEYS = tuple(_CACHE)
SECRET_KEYS = tuple(_SECRET)
PROMOTE_KEYS = tuple(_PROMOTE)
GATE_KEYS = tuple(_GATE)
PLOT_KEYS = tuple(_PLOT)
CHECK_COMMON_KEYS = tuple(_CHECK_COMMON)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://mlbuild.dev/schema/mlbuild-1.json",
    "title": "mlbuild.yaml",
    "description": "Targets of an mlbuild workspace (schema version 1).",
    "type": "object",
    "additionalProperties": False,
    "required": ["targets"],
    "properties": _TOP,
    "$defs": {
        "target": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": _TARGET,
        },
        "check": {
            "type": "object",
            "required": ["check"],
            "properties": {**_CHECK_COMMON, **_CHECK_OPTIONS},
            "additionalProperties": False,
        },
        "plot": {
            "type": "object",
            "required": ["path"],
            "additionalProperties": False,
            "properties": _PLOT,
        },
        "gate": {
            "type": "object",
            "required": ["metric"],
            "additionalProperties": False,
            "properties": _GATE,
        },
    },
}

STARTER = """\
# mlbuild.yaml: targets, their deps and outs. Every key and its type: `mlbuild schema`
# (a JSON Schema); every command: `mlbuild --help`.
version: 1
default: [model:train]

params:
  rows: 100
  train: {top: 3}

targets:
  data:raw:
    cmd: seq 1 ${params.rows} > ${outs[0]}
    outs: [data/raw.txt]

  model:train:
    cmd: sort -rn ${deps[0]} | head -n ${params.train.top} > ${outs[0]}
    deps: [data:raw]
    outs: [models/model.txt]
"""
