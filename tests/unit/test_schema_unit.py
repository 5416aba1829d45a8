"""The JSON Schema `mlbuild schema` prints accepts every real mlbuild.yaml we ship and
rejects what the loader rejects for shape (editors must not flag valid files)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from mlbuild.config import SCHEMA, STARTER

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted([REPO / "mlbuild.yaml", *REPO.glob("tests/projects/*/mlbuild.yaml")])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_validates(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), SCHEMA)


def test_starter_file_validates() -> None:
    jsonschema.validate(yaml.safe_load(STARTER), SCHEMA)


@pytest.mark.parametrize(
    "target",
    [
        {"cmd": "x", "checks": [{"check": "nope"}]},
        {"cmd": "x", "gate": [{"min": 1}]},
        {"promote": {"from": "m:*", "by": "acc", "mode": "best"}},
        {"cmd": "x", "colour": "red"},
    ],
)
def test_schema_rejects_malformed_targets(target: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"targets": {"t:x": target}}, SCHEMA)


@pytest.mark.parametrize(
    "config",
    [
        {"strict_inputs": True, "targets": {"t": {"cmd": "x", "strict_inputs": False}}},
        {"targets": {"map:{s}": {"cmd": "x", "matrix": {"s": "${params.samples}"}}}},
        {"targets": {"map:{s}": {"cmd": "x", "matrix": {"s": "${ params.data.samples }"}}}},
    ],
)
def test_schema_accepts_strict_inputs_and_a_matrix_list_from_params(
    config: dict[str, object],
) -> None:
    jsonschema.validate(config, SCHEMA)


@pytest.mark.parametrize(
    "config",
    [
        {"strict_inputs": "yes", "targets": {}},
        {"targets": {"t": {"cmd": "x", "strict_inputs": 1}}},
        {"targets": {"map:{s}": {"cmd": "x", "matrix": {"s": "samples"}}}},
        {"targets": {"map:{s}": {"cmd": "x", "matrix": {"s": "x-${params.samples}"}}}},
    ],
)
def test_schema_rejects_what_the_loader_rejects_for_strict_inputs_and_matrix(
    config: dict[str, object],
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, SCHEMA)


def test_schema_knows_every_key_the_loader_knows() -> None:
    from mlbuild.config import TARGET_KEYS, TOP_KEYS

    assert set(SCHEMA["properties"]) == set(TOP_KEYS)
    assert set(SCHEMA["$defs"]["target"]["properties"]) == set(TARGET_KEYS)


def test_schema_knows_every_nested_key_the_loader_knows() -> None:
    from mlbuild.config.schema import (
        CHECK_COMMON_KEYS,
        CHECK_KINDS,
        EXECUTOR_KEYS,
        GATE_KEYS,
        PROMOTE_KEYS,
        SIGNING_KEYS,
    )

    defs, top, target = SCHEMA["$defs"], SCHEMA["properties"], SCHEMA["$defs"]["target"]
    taken = {key for required, optional in CHECK_KINDS.values() for key in required + optional}
    assert set(defs["check"]["properties"]) == taken | set(CHECK_COMMON_KEYS)
    assert defs["check"]["properties"]["check"]["enum"] == list(CHECK_KINDS)
    assert set(defs["gate"]["properties"]) == set(GATE_KEYS)
    assert set(target["properties"]["promote"]["properties"]) == set(PROMOTE_KEYS)
    assert set(top["executor"]["properties"]) == set(EXECUTOR_KEYS)
    assert set(top["signing"]["properties"]) == set(SIGNING_KEYS)
