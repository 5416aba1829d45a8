"""`mlbuild card`: a Markdown model card from provenance, naming its manifest."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import Project


def test_card_documents_artifacts_lineage_params_and_verification(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build()
    run = p.mlbuild("card", "model:lr", "-o", "card.md")
    assert run.code == 0, run.err
    card = p.read("card.md")
    shown = json.loads(p.mlbuild("manifest", "show", "model:lr", "--json").out)
    assert card.startswith("# Model card: model:lr\n")
    assert f"from manifest `{shown['id']}`" in card
    out = shown["manifest"]["outs"][0]
    assert f"| `models/lr.txt` | {out['size']} | `{out['sha256']}` |" in card
    for upstream in ("`data:raw`", "`features:even`"):
        assert upstream in card
    assert "- `src/extra.txt` `xxh3-128:" in card  # the source data, with its digest
    assert "- `scripts/helpers.py` `xxh3-128:" in card  # the code, imported modules too
    assert "| `model:lr` | `train.lr` | `0.1` |" in card
    assert "| `data:raw` | `data.rows` | `6` |" in card
    assert "`mlbuild audit` passed for this target and its 2 upstream targets" in card
    assert "(clean git tree required)" in card


def test_card_reports_audit_violations(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    p.write("data/raw.txt", "tampered\n")
    card = p.mlbuild("card", "model:lr").out
    assert "`mlbuild audit` found 1 violation:" in card
    assert "- data:raw: out `data/raw.txt`" in card


def test_card_of_a_target_never_built(project: Callable[[str], Project]) -> None:
    p = project("basic")
    run = p.mlbuild("card", "model:lr")
    assert run.code == 2 and "has no manifest here" in run.err
