"""A fresh clone (outs and mlbuild.lock committed, no `.mlbuild/`): `card` and `manifest
show` say what is missing and offer a command that brings the records back, never a
plain build (which finds every target fresh and records nothing)."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from tests.conftest import Project


def _fresh_clone(p: Project) -> None:
    p.build()
    shutil.rmtree(p.path(".mlbuild"))


def test_fresh_clone_card_offers_force_all_which_records_the_lineage(
    project: Callable[[str], Project],
) -> None:
    p = project("ml_sweep")
    _fresh_clone(p)
    for command in (("card", "model:prod"), ("manifest", "show", "model:prod")):
        run = p.mlbuild(*command)
        assert run.code == 2
        assert run.err == (
            "mlbuild: error: model:prod has no manifest here: mlbuild.lock records a build of "
            "it, but .mlbuild/ holds no record of that build (as in a fresh clone) (run it "
            "and its upstream again: `mlbuild --force-all model:prod`, or fetch the recorded "
            "builds from the remote cache: `mlbuild clean --force && mlbuild pull --remote "
            "URL`)\n"
        )
    assert p.mlbuild("model:prod").code == 0  # what the old hint said: records nothing
    assert p.mlbuild("card", "model:prod").code == 2
    assert p.mlbuild("--force-all", "model:prod").code == 0
    card = p.mlbuild("card", "model:prod")
    assert card.code == 0, card.err
    assert "`mlbuild audit` passed for this target and its 4 upstream targets" in card.out


def test_fresh_clone_with_a_remote_pulls_the_recorded_builds(
    project: Callable[[str], Project],
) -> None:
    p = project("ml_sweep")
    p.write("mlbuild.yaml", p.read("mlbuild.yaml") + "remote: ../remote\n")
    p.build()
    assert p.mlbuild("push").code == 0
    built, _ = p.manifest("model:prod")
    shutil.rmtree(p.path(".mlbuild"))
    run = p.mlbuild("manifest", "show", "model:prod")
    assert run.code == 2
    assert run.err.endswith(
        "(fetch the recorded builds from the remote cache: `mlbuild clean --force && mlbuild "
        "pull`, or run it and its upstream again: `mlbuild --force-all model:prod`)\n"
    )
    assert p.mlbuild("clean", "--force").code == 0
    assert p.mlbuild("pull").code == 0
    _, restored = p.manifest("model:prod")
    assert (restored["status"], restored["restored_from"]) == ("restored", built)


def test_a_forced_promotion_may_be_the_first_job_of_a_fresh_clone(
    project: Callable[[str], Project],
) -> None:
    """`-B model:prod` runs only the promotion, before any job made `.mlbuild/logs/`."""
    p = project("ml_sweep")
    _fresh_clone(p)
    run = p.mlbuild("-B", "model:prod")
    assert run.code == 0, run.err
    assert p.manifest("model:prod")[1]["promotion"]["winner"] == "model:tree"
