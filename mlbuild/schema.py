"""The JSON Schema of mlbuild.yaml (version 1), and the starter file `mlbuild init` writes.

The schema serves editors (completion, squiggles); the loader in pipeline.py stays the
authority and gives better messages (positions, did-you-mean).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCHEMA", "STARTER"]

_STR_LIST: dict[str, Any] = {
    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
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
                "properties": {"from": {"type": "string"}, "secret": {"const": True}},
            },
        ]
    },
}

_STRICT_INPUTS: dict[str, Any] = {"type": "boolean"}
_STRICT_INPUTS_DOC = (
    "A Python read of a workspace file the target does not declare fails the build "
    "instead of warning"
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://mlbuild.dev/schema/mlbuild-1.json",
    "title": "mlbuild.yaml",
    "description": "Targets of an mlbuild workspace (schema version 1).",
    "type": "object",
    "additionalProperties": False,
    "required": ["targets"],
    "properties": {
        "version": {"const": 1},
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
        "executor": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "type": {"enum": ["local", "dask"]},
                "address": {"type": "string", "description": "Dask scheduler, tcp://HOST:PORT"},
                "mode": {"enum": ["shared", "remote"]},
                "jobs": {"oneOf": [{"const": "auto"}, {"type": "integer", "minimum": 1}]},
            },
        },
        "remote": {"type": "string", "description": "Shared cache: any fsspec URL."},
        "remote_options": {"type": "object", "description": "Passed to the fsspec filesystem."},
        "remote_write": {"type": "boolean", "description": "Push after every build."},
        "signing": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"key": {"type": "string", "description": "Ed25519 private key."}},
        },
        "trusted_keys": {**_STR_LIST, "description": "Public keys audit accepts."},
        "strict_inputs": {**_STRICT_INPUTS, "description": _STRICT_INPUTS_DOC + " (default)."},
        "targets": {
            "type": "object",
            # kind:name; neither part is "." or ".." (names are data, never paths)
            "propertyNames": {
                "pattern": (
                    "^(?!\\.\\.?(:|$))(?!.*:\\.\\.?$)[A-Za-z0-9_.\\-]+(:[A-Za-z0-9_.\\-{}]+)?$"
                )
            },
            "additionalProperties": {"$ref": "#/$defs/target"},
        },
    },
    "$defs": {
        "target": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": {
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
                "matrix": {
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
                                "description": "A list in the params: \"${params.samples}\".",
                            },
                        ]
                    },
                },
                "metrics": {**_STR_LIST, "description": "JSON/YAML metrics files (also outs)."},
                "checks": {"type": "array", "items": {"$ref": "#/$defs/check"}},
                "gate": {
                    "oneOf": [
                        {"$ref": "#/$defs/gate"},
                        {"type": "array", "items": {"$ref": "#/$defs/gate"}},
                    ]
                },
                "promote": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["from", "by"],
                    "properties": {
                        "from": {"type": "string", "description": "Candidate targets (glob)."},
                        "by": {"type": "string", "description": "The metric to rank by."},
                        "mode": {"enum": ["max", "min"]},
                    },
                },
                "resources": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": 0},
                },
                "always": {"type": "boolean"},
                "retries": {"type": "integer", "minimum": 0},
                "strict_inputs": {
                    **_STRICT_INPUTS,
                    "description": _STRICT_INPUTS_DOC + " (this target; overrides the top level).",
                },
                "desc": {"type": "string"},
            },
        },
        "check": {
            "type": "object",
            "required": ["check"],
            "properties": {
                "check": {
                    "enum": [
                        "columns",
                        "not_null",
                        "unique",
                        "range",
                        "allowed",
                        "rows",
                        "drift",
                        "python",
                    ]
                },
                "severity": {"enum": ["error", "warn"]},
                "out": {"type": "string"},
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
            },
            "additionalProperties": False,
        },
        "gate": {
            "type": "object",
            "required": ["metric"],
            "additionalProperties": False,
            "properties": {
                "metric": {"type": "string"},
                "min": {"type": "number"},
                "max": {"type": "number"},
                "max_drop": {"type": "number", "minimum": 0},
                "max_rise": {"type": "number", "minimum": 0},
                "vs": {"const": "previous"},
            },
        },
    },
}

STARTER = """\
# mlbuild.yaml: targets, their deps and outs. Docs: docs/mlbuild-yaml.md
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
