"""`mlbuild card` of a `promote:` target says what the promotion did (it runs no command)."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Project


def _made(card: str) -> str:
    """The card's "How it was made" section, without its heading."""
    return card.split("## How it was made\n\n")[1].split("\n\n## ")[0]


def test_card_of_a_promotion_says_from_by_mode_winner_and_scores(
    project: Callable[[str], Project],
) -> None:
    p = project("ml_sweep")
    p.build()
    tree_id, _ = p.manifest("model:tree")
    made = _made(p.mlbuild("card", "model:prod").out)
    assert made == (
        f"A promotion: no command ran. The outs are copies of those of `model:tree` (build "
        f"`{tree_id}`), the candidate matching `model:*` with the highest `accuracy` "
        "(`mode: max`). Candidates by `accuracy`:\n"
        "\n"
        "- `model:knn` 0.88\n"
        "- `model:lr` 0.81\n"
        "- `model:tree` 0.93 (winner)"
    )
    p.replace("mlbuild.yaml", "by: accuracy, mode: max", "by: eval.loss, mode: min")
    p.build("model:prod")
    lr_id, _ = p.manifest("model:lr")
    made = _made(p.mlbuild("card", "model:prod").out)
    assert f"those of `model:lr` (build `{lr_id}`)" in made
    assert "with the lowest `eval.loss` (`mode: min`)" in made
    assert made.endswith("- `model:lr` 0.12 (winner)\n- `model:tree` 0.3")
