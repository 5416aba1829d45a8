"""The JSON Schema `mlbuild schema` prints accepts every real mlbuild.yaml we ship and
rejects what the loader rejects for shape (editors must not flag valid files)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from mlbuild.schema import SCHEMA, STARTER

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
