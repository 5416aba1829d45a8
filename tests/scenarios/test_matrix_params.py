"""Matrix values from a params list (the Snakemake tutorial's samples): adding a sample is one
edit of params.yaml, builds exactly the new target, and leaves every other sample fresh."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import Project

Workspace = Callable[..., Project]

CONFIG = """\
targets:
  map:{sample}:
    matrix: {sample: "${params.samples}"}
    cmd: echo ${sample} > ${outs[0]}
    outs: ["mapped/${sample}.txt"]
  calls:
    params: [samples]
    deps: ["mapped/*.txt"]
    cmd: cat ${deps} > ${outs[0]}
    outs: [calls.txt]
"""


def test_adding_a_sample_to_the_params_list_builds_only_its_target(
    workspace: Workspace,
) -> None:
    p = workspace(CONFIG, {"params.yaml": "samples: [A, B]\n"})
    assert p.build().ran == ["calls", "map:A", "map:B"]

    p.write("params.yaml", "samples: [A, B, C]\n")
    diff = json.loads(p.mlbuild("params", "diff", "--json").out)["changes"]
    assert [(c["key"], c["old"], c["new"], c["stale"]) for c in diff] == [
        ("samples", ["A", "B"], ["A", "B", "C"], ["calls"])
    ]
    run = p.build()
    # map:A and map:B read only their own sample: still fresh. calls reads the whole list.
    assert run.ran == ["calls", "map:C"]
    assert p.read("calls.txt") == "A\nB\nC\n"

    # strict_inputs decides how a run is judged, not what it makes: not part of any key.
    p.write("mlbuild.yaml", "strict_inputs: true\n" + CONFIG)
    assert p.build().ran == []


def test_a_misspelt_params_list_key_is_a_config_error_naming_the_key(
    workspace: Workspace,
) -> None:
    p = workspace(
        CONFIG.replace("${params.samples}", "${params.sampels}"),
        {"params.yaml": "samples: [A, B]\n"},
    )
    run = p.mlbuild("validate")
    assert run.code == 2
    assert run.err == (
        "mlbuild: error: mlbuild.yaml:3:22: matrix.sample: params key 'sampels' is not "
        "defined (params.yaml) (did you mean 'samples'?)\n"
    )
