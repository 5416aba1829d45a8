"""What a valid mlbuild.yaml turns into: interpolation, params, matrix, deps, paths."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mlbuild.config import DepKind, DepSpec, Pipeline
from mlbuild.errors import ConfigError, SourcePos

Load = Callable[[str], Pipeline]

HOSTILE = ["a; rm -rf /", 'it\'s "quoted"', "$(touch pwned)", "`touch pwned`", "x && y | z", ""]


def _run_shell(cmd: str, cwd: Path) -> str:
    return subprocess.run(
        ["sh", "-c", cmd], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


# --------------------------------------------------------------------------- shell quoting


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_param_value_reaches_the_command_as_one_literal_argument(
    ws: Path, load: Load, value: str
) -> None:
    (ws / "params.yaml").write_text(f"evil: {_yaml_str(value)}\n")
    pipeline = load(
        """
        version: 1
        targets:
          a:
            cmd: printf '[%s]\\n' ${params.evil}
        """
    )
    (cmd,) = pipeline.targets["a"].cmd or ()
    assert _run_shell(cmd, ws) == f"[{value}]\n"
    assert not (ws / "pwned").exists()


def _yaml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_raw_interpolation_is_not_shell_quoted(ws: Path, load: Load) -> None:
    (ws / "params.yaml").write_text('flags: "--a 1 --b 2"\n')
    pipeline = load(
        """
        version: 1
        targets:
          a:
            cmd: printf '[%s]' ${raw:params.flags}
        """
    )
    (cmd,) = pipeline.targets["a"].cmd or ()
    assert _run_shell(cmd, ws) == "[--a][1][--b][2]"
    assert pipeline.targets["a"].params == {"flags": "--a 1 --b 2"}


def test_double_dollar_escapes_interpolation(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        targets:
          a:
            cmd: echo $${HOME} $${params.x}
        """
    )
    assert pipeline.targets["a"].cmd == ("echo ${HOME} ${params.x}",)
    assert pipeline.targets["a"].params == {}


def test_values_in_out_paths_are_not_shell_quoted(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        vars: {name: my file}
        targets:
          a:
            cmd: touch ${outs}
            outs: ["out/${vars.name}.txt"]
        """
    )
    assert pipeline.targets["a"].outs == ("out/my file.txt",)
    assert pipeline.targets["a"].cmd == ("touch 'out/my file.txt'",)


# --------------------------------------------------------------------------- shell contexts
#
# Every template is loaded with each hostile value in its own target. A template the loader
# accepts is then run by the real shell (sh, and bash when present): no value may run a
# command. The expectation pins the decision, so a loader that refused everything would
# fail here as surely as one that let a value out.

CONTEXT_VALUES = [
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "x\ntouch PWNED #",
    "\\'$(touch PWNED)\\'",
    "}; touch PWNED; ${x",
    "EOF\ntouch PWNED\nEOF",
    ")); touch PWNED; ((",
    "a'b\"c$d\\e f",
]

CONTEXTS = [
    ("echo ${V}", None),
    ("echo --name=${V} a${V}b", None),
    ('echo "a "${V}" b" \'c \'${V}', None),
    ("( echo ${V} ); { echo ${V}; }", None),
    ("echo $(echo ${V}) $(echo $(echo ${V}))", None),
    ('echo "$(echo ${V})" "$(echo "$(echo ${V})")"', None),
    ('echo "it\'s" \'say "hi"\' "a\\"b" \'a\\\' ${V}', None),
    ("echo \"$(echo ')')\" $(echo ')') ${V}", None),
    ("cat <<EOF; echo ${V}\nbody\nEOF", None),
    ("cat <<EOF\nbody\nEOF\necho ${V}", None),
    ("echo ${V} # a comment", None),
    ("echo a#${V}", None),
    ('x=${V}; echo "$x"', None),
    ("echo $${HOME:-x} ${V}", None),
    ("echo $((1 + 2)) ${V}", None),
    ('echo "${V}"', "inside double quotes"),
    ('echo "--name=${V}"', "inside double quotes"),
    ("echo '${V}'", "inside single quotes"),
    ("echo `echo ${V}`", "inside backticks"),
    ('echo "$(echo `echo ${V}`)"', "inside backticks"),
    ("cat <<EOF\n${V}\nEOF", "inside a here-document"),
    ("cat <<'EOF'\n${V}\nEOF", "inside a here-document"),
    ("cat <<-EOF\n\t${V}\n\tEOF", "inside a here-document"),
    ("cat <<EOF; cat <<END\na\nEOF\n${V}\nEND", "inside a here-document"),
    ("cat <<${V}\nbody\n", "here-document delimiter"),
    ("echo $${X:-${V}}", "shell expansion"),
    ('echo "$${X:-${V}}"', "shell expansion"),
    ("echo $(( ${V} ))", "inside $((...))"),
    ("(( ${V} + 1 )); echo x", "((...)) arithmetic"),
    ("for (( i = ${V}; i < 1; i++ )); do :; done", "((...)) arithmetic"),
    ("echo $[ ${V} ]", "cannot follow"),
    ("echo \"$${X:-'a'}\" ${V}", "shells read differently"),
    ("( (echo ${V}) )", None),
    ("echo \\${V}", "right after a backslash"),
    ("echo ${raw:vars.dollar}${V}", "right after a $"),
    ("echo x # ${V}", "inside a comment"),
    ("echo $'a' ${V}", "cannot follow"),
    ("echo $(case a in a) echo ${V};; esac)", "cannot follow"),
    ('echo "$(case a in a) echo "${V}";; esac)"', "cannot follow"),
    ("python -c 'print(\"${V}\")'", "inside single quotes"),
    ("awk '{print \"${V}\"}' /dev/null", "inside single quotes"),
    ('sh -c "echo ${V}"', "inside double quotes"),
]


_LITERAL_ECHO = "echo() { printf '%s\\n' \"$*\"; }\n"  # dash's echo reads backslashes


def _shells() -> list[str]:
    import shutil

    return ["sh", *(["bash"] if shutil.which("bash") else [])]


@pytest.mark.parametrize(("template", "refused"), CONTEXTS, ids=[c[0] for c in CONTEXTS])
def test_a_value_is_refused_or_cannot_run_in_every_shell_context(
    ws: Path, template: str, refused: str | None
) -> None:
    import yaml

    from mlbuild.config import load_pipeline

    targets = {
        f"t{i}": {"cmd": template.replace("${V}", f"${{params.v{i}}}")}
        for i in range(len(CONTEXT_VALUES))
    }
    (ws / "params.yaml").write_text(
        yaml.safe_dump({f"v{i}": v for i, v in enumerate(CONTEXT_VALUES)})
    )
    (ws / "mlbuild.yaml").write_text(yaml.safe_dump({"vars": {"dollar": "$"}, "targets": targets}))
    if refused is not None:
        with pytest.raises(ConfigError, match=re.escape(refused)) as info:
            load_pipeline(str(ws / "mlbuild.yaml"))
        assert "outside any quotes" in str(info.value)
        return
    pipeline = load_pipeline(str(ws / "mlbuild.yaml"))
    for i, value in enumerate(CONTEXT_VALUES):
        (cmd,) = pipeline.targets[f"t{i}"].cmd or ()
        for shell in _shells():
            proc = subprocess.run(
                [shell, "-c", _LITERAL_ECHO + cmd],
                cwd=ws,
                capture_output=True,
                text=True,
                check=False,
            )
            assert not (ws / "PWNED").exists(), (shell, cmd)
            if "<<" not in cmd and "x=" not in cmd:  # else the value is not printed
                assert " ".join(value.split()) in " ".join(proc.stdout.split()), (shell, cmd)


SHELL_PIECES = [
    *["echo ", " ", "a", "=", ";", "&&", "|", "<", ">", "\n", "\t", "#", "\\", "$"],
    *["'", '"', "`", "$(", "(", ")", "((", "))", "$((", "${", "}", "{", "$${", "$'", "$["],
    *["<<", "<<-", "EOF", "'EOF'", "case ", " in ", "esac", ":-", "[", "]"],
]


def test_random_commands_either_refuse_a_value_or_keep_it_from_running(ws: Path) -> None:
    # A seeded fuzz over shell syntax: whatever the loader accepts is run by sh and bash
    # with values that break out of a wrong context; none may create PWNED.
    import random

    from mlbuild.config.interpolate import Scope as _Scope
    from mlbuild.config.interpolate import interpolate

    rng = random.Random(9)
    where = SourcePos("mlbuild.yaml", 1, 1)
    accepted = 0
    for _ in range(300):
        parts = [rng.choice(SHELL_PIECES) for _ in range(rng.randint(1, 6))]
        parts.insert(rng.randint(0, len(parts)), "${params.v}")
        template = "".join(parts)
        for value in rng.sample(CONTEXT_VALUES, 2):
            scope = _Scope(name="t", params={"v": value}, vars={}, env={}, matrix={})
            try:
                cmd = interpolate(template, scope, where, shell=True)
            except ConfigError:
                break
            accepted += 1
            for shell in _shells():
                subprocess.run(
                    [shell, "-c", cmd],
                    cwd=ws,
                    capture_output=True,
                    stdin=subprocess.DEVNULL,
                    timeout=10,
                    check=False,
                )
                assert not (ws / "PWNED").exists(), (shell, template, value)
    assert accepted > 50  # the fuzz reached the shell, not only the loader's refusals


def test_a_raw_value_is_shell_text_so_the_next_value_sees_its_quote(load: Load) -> None:
    with pytest.raises(ConfigError, match="inside double quotes"):
        load(
            """
            vars: {q: '"'}
            params: {v: x}
            targets:
              a: {cmd: "echo ${raw:vars.q} ${params.v} ${raw:vars.q}"}
            """
        )


def test_an_empty_outs_list_inserts_nothing_anywhere(load: Load) -> None:
    pipeline = load(
        """
        targets:
          a: {cmd: "echo '${outs}' \\"${deps}\\""}
        """
    )
    assert pipeline.targets["a"].cmd == ("echo '' \"\"",)


# --------------------------------------------------------------------------- ${outs} ${deps}


def test_outs_and_deps_expand_to_each_path_quoted_separately(ws: Path, load: Load) -> None:
    (ws / "in one.csv").write_text("x")
    (ws / "two.csv").write_text("y")
    pipeline = load(
        """
        version: 1
        targets:
          a:
            cmd: printf '[%s]' ${deps} ${outs}
            deps: [in one.csv, two.csv]
            outs: [out/a b.txt, out/c.txt]
        """
    )
    (cmd,) = pipeline.targets["a"].cmd or ()
    assert _run_shell(cmd, ws) == "[in one.csv][two.csv][out/a b.txt][out/c.txt]"


def test_indexed_outs_and_deps_pick_one_path(ws: Path, load: Load) -> None:
    (ws / "a.csv").write_text("x")
    (ws / "b.csv").write_text("y")
    pipeline = load(
        """
        version: 1
        targets:
          t:
            cmd: run ${deps[1]} ${outs[0]} ${target}
            deps: [a.csv, b.csv]
            outs: [o1, o2]
        """
    )
    cmd = pipeline.targets["t"].cmd
    assert cmd is not None
    assert shlex.split(cmd[0]) == ["run", "b.csv", "o1", "t"]


def test_target_dep_expands_to_all_outs_of_that_target_in_deps(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        targets:
          data:raw:
            cmd: make
            outs: [data/x.csv, data/y.csv]
          features:
            cmd: featurize ${deps}
            deps: ["data:raw"]
        """
    )
    cmd = pipeline.targets["features"].cmd
    assert cmd is not None
    assert shlex.split(cmd[0]) == ["featurize", "data/x.csv", "data/y.csv"]


def test_cmd_list_keeps_order_and_interpolates_each(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        vars: {n: 3}
        targets:
          a:
            cmd:
              - echo first ${vars.n}
              - echo second ${outs}
            outs: [o.txt]
        """
    )
    assert pipeline.targets["a"].cmd == ("echo first 3", "echo second o.txt")


# --------------------------------------------------------------------------- params


def test_params_files_merge_in_order_yaml_json_toml(ws: Path, load: Load) -> None:
    (ws / "base.yaml").write_text("train:\n  lr: 0.1\n  epochs: 10\nseed: 1\n")
    (ws / "over.json").write_text('{"train": {"lr": 0.2}, "extra": "j"}')
    (ws / "last.toml").write_text("seed = 3\n[train]\nbatch = 32\n")
    pipeline = load(
        """
        version: 1
        params: [base.yaml, over.json, last.toml]
        targets:
          a:
            cmd: echo
            params: [train, seed, extra]
        """
    )
    assert pipeline.targets["a"].params == {
        "train": {"lr": 0.2, "epochs": 10, "batch": 32},
        "seed": 3,
        "extra": "j",
    }
    assert pipeline.param_files == ("base.yaml", "over.json", "last.toml")


def test_later_params_file_overrides_earlier_one(ws: Path, load: Load) -> None:
    (ws / "a.yaml").write_text("lr: 0.1\n")
    (ws / "b.yaml").write_text("lr: 0.5\n")
    pipeline = load(
        """
        version: 1
        params: [b.yaml, a.yaml]
        targets:
          a:
            cmd: echo ${params.lr}
        """
    )
    assert pipeline.targets["a"].params == {"lr": 0.1}
    assert pipeline.targets["a"].cmd == ("echo 0.1",)


def test_params_yaml_next_to_config_is_read_by_default(ws: Path, load: Load) -> None:
    (ws / "params.yaml").write_text("rows: 1000\n")
    pipeline = load(
        """
        version: 1
        targets:
          a:
            cmd: echo ${params.rows}
        """
    )
    assert pipeline.targets["a"].cmd == ("echo 1000",)


def test_inline_params_mapping_is_used(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        params: {data: {rows: 5}}
        targets:
          a:
            cmd: echo
            params: [data.rows]
        """
    )
    assert pipeline.targets["a"].params == {"data.rows": 5}


@pytest.mark.parametrize(
    ("literal", "value", "rendered"),
    [("false", False, "false"), ("0", 0, "0"), ('""', "", "''"), ("null", None, "null")],
)
def test_falsy_param_values_are_real_values(
    ws: Path, load: Load, literal: str, value: object, rendered: str
) -> None:
    (ws / "params.yaml").write_text(f"flag: {literal}\n")
    pipeline = load(
        """
        version: 1
        targets:
          declared:
            cmd: echo
            params: [flag]
          used:
            cmd: echo ${params.flag}
        """
    )
    assert pipeline.targets["declared"].params == {"flag": value}
    assert pipeline.targets["used"].params == {"flag": value}
    assert pipeline.targets["used"].cmd == (f"echo {rendered}",)


def test_param_used_in_cmd_is_tracked_without_being_declared(ws: Path, load: Load) -> None:
    (ws / "params.yaml").write_text("data:\n  rows: 100\n  cols: 3\nseed: 7\n")
    pipeline = load(
        """
        version: 1
        targets:
          a:
            cmd: gen --rows ${params.data.rows}
            params: [seed]
        """
    )
    assert pipeline.targets["a"].params == {"seed": 7, "data.rows": 100}


def test_param_indexing_into_a_list(ws: Path, load: Load) -> None:
    (ws / "params.yaml").write_text("layers: [64, 32]\n")
    pipeline = load(
        """
        version: 1
        targets:
          a:
            cmd: echo ${params.layers.1}
        """
    )
    assert pipeline.targets["a"].cmd == ("echo 32",)


def test_declared_env_is_merged_and_usable_in_cmd(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        env: {SEED: "0", MODE: fast}
        targets:
          a:
            cmd: run ${env.SEED} ${env.MODE}
            env: {MODE: slow}
        """
    )
    spec = pipeline.targets["a"]
    assert dict(spec.env) == {"SEED": "0", "MODE": "slow"}
    assert spec.cmd == ("run 0 slow",)


# --------------------------------------------------------------------------- matrix


def test_matrix_expands_to_the_cartesian_product_with_interpolated_outs(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        vars: {d: models}
        targets:
          model:{algo}-{size}:
            matrix: {algo: [logreg, forest], size: [1, 2, 3]}
            cmd: train ${algo} ${size} ${outs}
            outs: ["${vars.d}/${algo}-${size}.joblib"]
        """
    )
    expected = {f"model:{a}-{s}": (a, s) for a in ("logreg", "forest") for s in (1, 2, 3)}
    assert set(pipeline.targets) == set(expected)
    for name, (algo, size) in expected.items():
        spec = pipeline.targets[name]
        assert spec.outs == (f"models/{algo}-{size}.joblib",)
        assert spec.cmd == (f"train {algo} {size} models/{algo}-{size}.joblib",)
        assert dict(spec.matrix) == {"algo": algo, "size": size}
        assert spec.kind == "model"


def test_matrix_members_can_be_named_as_deps(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        targets:
          model:{algo}:
            matrix: {algo: [a, b]}
            cmd: train
            outs: ["m/${algo}"]
          report:
            cmd: report ${deps}
            deps: ["model:a", "model:b"]
        """
    )
    spec = pipeline.targets["report"]
    assert spec.dep_targets == ("model:a", "model:b")
    assert spec.cmd == ("report m/a m/b",)


# --------------------------------------------------------------------------- deps and paths


def test_dep_on_a_path_another_target_produces_is_a_target_dep(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        targets:
          data:raw:
            cmd: make
            outs: [data/raw.csv]
          features:
            cmd: featurize
            deps: [./data/raw.csv]
        """
    )
    assert pipeline.targets["features"].deps == (DepSpec(DepKind.TARGET, "data:raw"),)
    assert pipeline.targets["features"].dep_targets == ("data:raw",)


def test_dep_inside_another_targets_directory_out_depends_on_that_target(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        targets:
          data:raw:
            cmd: make
            outs: [data]
          features:
            cmd: featurize ${deps}
            deps: [data/part-0.csv]
        """
    )
    assert pipeline.targets["features"].dep_targets == ("data:raw",)
    assert pipeline.targets["features"].cmd == ("featurize data/part-0.csv",)
    assert pipeline.owner_of("data/part-0.csv") == "data:raw"
    assert pipeline.owner_of("other.csv") is None


def test_existing_file_dep_is_a_path_dep(ws: Path, load: Load) -> None:
    (ws / "scripts").mkdir()
    (ws / "scripts" / "make.py").write_text("")
    pipeline = load(
        """
        version: 1
        targets:
          a:
            cmd: python scripts/make.py
            deps: [scripts/make.py]
        """
    )
    assert pipeline.targets["a"].deps == (DepSpec(DepKind.PATH, "scripts/make.py"),)


def test_glob_dep_records_the_sorted_matching_files(ws: Path, load: Load) -> None:
    (ws / "src" / "sub").mkdir(parents=True)
    for rel in ("src/b.py", "src/a.py", "src/sub/c.py", "src/readme.md"):
        (ws / rel).write_text(rel)
    pipeline = load(
        """
        version: 1
        targets:
          a:
            cmd: echo
            deps: ["src/**/*.py"]
        """
    )
    (dep,) = pipeline.targets["a"].deps
    assert dep.kind is DepKind.GLOB
    assert dep.paths == ("src/a.py", "src/b.py", "src/sub/c.py")


def test_paths_are_normalized(ws: Path, load: Load) -> None:
    (ws / "b").mkdir()
    (ws / "b" / "in.csv").write_text("x")
    pipeline = load(
        """
        version: 1
        targets:
          a:
            cmd: echo ${deps} ${outs}
            deps: [./a/../b/in.csv]
            outs: [./out//x/../y.txt]
        """
    )
    spec = pipeline.targets["a"]
    assert spec.deps == (DepSpec(DepKind.PATH, "b/in.csv"),)
    assert spec.outs == ("out/y.txt",)
    assert spec.cmd == ("echo b/in.csv out/y.txt",)


def test_targets_keep_file_order_and_default_is_read(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        default: [zeta]
        targets:
          zeta: {cmd: echo}
          alpha: {cmd: echo}
        """
    )
    assert list(pipeline.targets) == ["zeta", "alpha"]
    assert pipeline.default == ("zeta",)


def test_target_without_outs_is_allowed(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        targets:
          test:
            cmd: pytest
        """
    )
    assert pipeline.targets["test"].outs == ()


def test_comments_and_reformatting_do_not_change_the_loaded_target(
    write_config: Callable[[str], Path],
) -> None:
    from mlbuild.config import load_pipeline

    a = load_pipeline(
        str(
            write_config(
                """
                version: 1
                targets:
                  a: {cmd: "echo hi", outs: [x, y]}
                """
            )
        )
    ).targets["a"]
    b = load_pipeline(
        str(
            write_config(
                """
                # a comment
                version: 1
                targets:
                  a:
                    cmd: echo hi   # same command
                    outs:
                      - x
                      - y
                """
            )
        )
    ).targets["a"]
    assert (a.cmd, a.outs, a.deps, dict(a.params)) == (b.cmd, b.outs, b.deps, dict(b.params))


def test_python_target_has_no_cmd(load: Load, ws: Path) -> None:
    (ws / "project").mkdir()
    (ws / "project" / "train.py").write_text("def fit(**kwargs): pass\n")
    pipeline = load(
        """
        version: 1
        targets:
          model:
            python: project.train:fit
            outs: [m.joblib]
        """
    )
    spec = pipeline.targets["model"]
    assert spec.cmd is None
    assert spec.python == "project.train:fit"


def test_executor_jobs_is_read(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        executor: {type: local, jobs: 3}
        targets:
          a: {cmd: echo}
        """
    )
    assert pipeline.jobs == 3


def test_a_python_callable_in_a_module_that_does_not_exist_is_a_config_error(
    load: Load,
) -> None:
    with pytest.raises(
        ConfigError,
        match="module 'projekt.train' of 'projekt.train:fit' is "
        r"neither in the workspace \(projekt/train.py\) nor installed",
    ):
        load(
            """
            targets:
              model:
                python: projekt.train:fit
                outs: [m.joblib]
            """
        )


# --------------------------------------------------------------------------- matrix from params

SAMPLES_TARGET = """
targets:
  map:{sample}:
    matrix: {sample: "${params.samples}"}
    cmd: map ${sample} ${outs}
    outs: ["mapped/${sample}.bam"]
"""


def test_matrix_values_from_a_params_list_make_one_target_each(ws: Path, load: Load) -> None:
    (ws / "params.yaml").write_text("samples: [A, B, 3]\n")
    pipeline = load(SAMPLES_TARGET)
    assert list(pipeline.targets) == ["map:A", "map:B", "map:3"]
    spec = pipeline.targets["map:3"]
    assert spec.cmd == ("map 3 mapped/3.bam",)
    assert dict(spec.matrix) == {"sample": 3}
    # Each target reads its own value of the list, not the whole list: adding a sample
    # leaves the key of every other target as it was.
    assert {n: dict(t.params) for n, t in pipeline.targets.items()} == {
        "map:A": {"samples": "A"},
        "map:B": {"samples": "B"},
        "map:3": {"samples": 3},
    }
    (ws / "params.yaml").write_text("samples: [A, B, 3, C]\n")
    again = load(SAMPLES_TARGET)
    assert list(again.targets) == ["map:A", "map:B", "map:3", "map:C"]
    assert all(again.targets[n] == pipeline.targets[n] for n in pipeline.targets)


def test_a_matrix_target_that_reads_the_whole_list_depends_on_the_whole_list(
    ws: Path, load: Load
) -> None:
    (ws / "params.yaml").write_text("data: {samples: [A, B]}\n")
    pipeline = load(
        """
        targets:
          map:{sample}:
            matrix: {sample: "${ params.data.samples }"}
            cmd: map ${sample} --of ${params.data.samples}
          count:{sample}:
            matrix: {sample: "${params.data.samples}"}
            params: [data.samples]
            cmd: count ${sample}
          pair:{x}-{y}:
            matrix: {x: "${params.data.samples}", y: "${params.data.samples}"}
            cmd: pair ${x} ${y}
        """
    )
    for name in ("map:A", "count:B", "pair:A-B"):
        assert dict(pipeline.targets[name].params) == {"data.samples": ["A", "B"]}, name


def test_include_and_exclude_work_on_values_from_params(ws: Path, load: Load) -> None:
    (ws / "params.yaml").write_text("samples: [A, B, C]\n")
    pipeline = load(
        """
        targets:
          map:{sample}:
            matrix:
              sample: "${params.samples}"
              exclude: [{sample: B}]
              include: [{sample: A, opts: fast}, {sample: Z, opts: slow}]
            cmd: map ${sample}
        """
    )
    assert list(pipeline.targets) == ["map:A", "map:C", "map:Z"]
    assert dict(pipeline.targets["map:A"].matrix) == {"sample": "A", "opts": "fast"}
    assert dict(pipeline.targets["map:A"].params) == {"samples": "A"}
    # Z comes from include:, not from the list: it does not read the list at all.
    assert dict(pipeline.targets["map:Z"].params) == {}


@pytest.mark.parametrize(
    ("params", "matrix", "message"),
    [
        (
            "samples: [A, B]\n",
            '"${params.sampels}"',
            "mlbuild.yaml:3:22: matrix.sample: params key 'sampels' is not defined "
            "(params.yaml) (did you mean 'samples'?)",
        ),
        (
            "samples: A\n",
            '"${params.samples}"',
            "mlbuild.yaml:3:22: matrix.sample: params key 'samples' in params.yaml is a "
            "string ('A'), not a list (write it as a list: samples: [a, b])",
        ),
        (
            "samples: []\n",
            '"${params.samples}"',
            "mlbuild.yaml:3:22: matrix.sample: params key 'samples' in params.yaml is an empty "
            "list, so the matrix makes no target (add a value to the list, or remove the target)",
        ),
        (
            "samples: [A, {id: B}]\n",
            '"${params.samples}"',
            "mlbuild.yaml:3:22: matrix.sample: params key 'samples' in params.yaml holds a "
            "mapping at index 1: matrix values must be plain values (strings, numbers, booleans)",
        ),
        (
            "samples: [A, null]\n",
            '"${params.samples}"',
            "matrix.sample: params key 'samples' in params.yaml holds null at index 1",
        ),
        (
            "samples: [A, B, A]\n",
            '"${params.samples}"',
            "matrix.sample: params key 'samples' in params.yaml lists 'A' twice",
        ),
        (
            "samples: [A]\n",
            '"x-${params.samples}"',
            "mlbuild.yaml:3:22: matrix.sample must be a list, or the whole string "
            "\"${params.KEY}\" naming a list in the params, not 'x-${params.samples}'",
        ),
        (
            "samples: [A]\n",
            '"${vars.samples}"',
            "(vars hold plain values, not lists: put the list in a params file)",
        ),
    ],
    ids=["misspelt", "not-a-list", "empty", "mapping", "null", "twice", "partial", "vars"],
)
def test_a_bad_params_list_for_a_matrix_is_a_one_line_config_error(
    ws: Path, load: Load, params: str, matrix: str, message: str
) -> None:
    (ws / "params.yaml").write_text(params)
    with pytest.raises(ConfigError) as info:
        load(SAMPLES_TARGET.replace('"${params.samples}"', matrix))
    assert info.value.exit_code == 2
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_params_list_names_the_file_whose_value_won_the_merge(ws: Path, load: Load) -> None:
    (ws / "base.yaml").write_text("samples: [A]\n")
    (ws / "local.json").write_text('{"samples": "A"}')
    with pytest.raises(ConfigError, match="params key 'samples' in local.json is a string"):
        load("params: [base.yaml, local.json]\n" + SAMPLES_TARGET)


# --------------------------------------------------------------------------- strict_inputs


def test_strict_inputs_is_off_by_default_set_at_the_top_and_overridden_per_target(
    load: Load,
) -> None:
    assert load("targets:\n  a: {cmd: echo}\n").targets["a"].strict_inputs is False
    pipeline = load(
        """
        strict_inputs: true
        targets:
          a: {cmd: echo}
          b: {cmd: echo, strict_inputs: false}
        """
    )
    assert pipeline.targets["a"].strict_inputs is True
    assert pipeline.targets["b"].strict_inputs is False
    pipeline = load("targets:\n  a: {cmd: echo, strict_inputs: true}\n  b: {cmd: echo}\n")
    assert [t.strict_inputs for t in pipeline.targets.values()] == [True, False]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "strict_inputs: yes please\ntargets:\n  a: {cmd: echo}\n",
            "mlbuild.yaml:1:16: strict_inputs must be true or false, not str",
        ),
        (
            "targets:\n  a: {cmd: echo, strict_inputs: 1}\n",
            "mlbuild.yaml:2:33: strict_inputs must be true or false, not int",
        ),
        (
            "targets:\n  a: {cmd: echo, strict_input: true}\n",
            "unknown key 'strict_input' in target 'a' (did you mean 'strict_inputs'?)",
        ),
    ],
)
def test_strict_inputs_takes_only_a_boolean(load: Load, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(text)
    assert message in str(info.value)


def test_a_transposed_key_suggests_the_key_meant(load: Load) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'dpes' .*\(did you mean 'deps'\?\)"):
        load("targets:\n  a:\n    cmd: echo\n    dpes: [x]\n")


def test_the_dask_connect_timeout_is_read_and_defaults_to_ten_seconds(load: Load) -> None:
    text = "executor: {{type: dask, address: 'tcp://h:8786'{}}}\ntargets:\n  a: {{cmd: echo}}\n"
    assert load(text.format("")).executor_connect_timeout == 10.0
    assert load(text.format(", connect_timeout: 2.5")).executor_connect_timeout == 2.5
