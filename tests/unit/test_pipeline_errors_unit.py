"""Every mistake in mlbuild.yaml is a ConfigError at `mlbuild.yaml:LINE:COL:` (SPEC §2)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mlbuild.config import Pipeline
from mlbuild.errors import ConfigError

Load = Callable[[str], Pipeline]


def config_error(load: Load, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(text)
    assert info.value.exit_code == 2
    return str(info.value)


# --------------------------------------------------------------------------- schema


def test_unknown_target_key_points_at_the_key_and_suggests_the_right_one(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            outz: [x]
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:5:")
    assert "outz" in msg
    assert "did you mean 'outs'" in msg


def test_unknown_top_level_key_suggests_targets(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        tragets:
          a: {cmd: echo}
        """,
    )
    assert msg.startswith("mlbuild.yaml:2:1:")
    assert "did you mean 'targets'" in msg


def test_unknown_key_without_close_match_lists_allowed_keys(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            zzzzzz: 1
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:5:")
    assert "cmd" in msg and "deps" in msg


def test_string_where_integer_expected_points_at_the_value(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            retries: many
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:14:")
    assert "retries" in msg


def test_mapping_where_list_expected_names_both_types(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            deps: {x: 1}
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:11:")
    assert "deps must be a list" in msg


def test_string_where_boolean_expected_is_a_type_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            always: "yes"
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:13:")
    assert "always" in msg


def test_unsupported_schema_version_is_reported_at_the_version(load: Load) -> None:
    msg = config_error(
        load,
        """
        targets:
          a: {cmd: echo}
        version: 2
        """,
    )
    assert msg.startswith("mlbuild.yaml:3:10:")


def test_invalid_yaml_syntax_reports_a_position(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: [echo
        """,
    )
    assert msg.startswith("mlbuild.yaml:")
    assert "invalid YAML" in msg


# --------------------------------------------------------------------------- duplicates


def test_duplicate_target_name_reports_line_of_second_key(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo 1
          b:
            cmd: echo 2
          a:
            cmd: echo 3
        """,
    )
    assert msg.startswith("mlbuild.yaml:7:3:")
    assert "duplicate key 'a'" in msg
    assert "line 3" in msg


def test_duplicate_key_inside_a_flow_mapping_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        params: {lr: 1, lr: 2}
        targets:
          a: {cmd: echo}
        """,
    )
    assert msg.startswith("mlbuild.yaml:2:17:")
    assert "duplicate key 'lr'" in msg


def test_duplicate_key_in_params_file_names_that_file_and_line(ws: Path, load: Load) -> None:
    (ws / "params.yaml").write_text("b: 1\nc: 2\nb: 3\n")
    msg = config_error(
        load,
        """
        version: 1
        params: params.yaml
        targets:
          a: {cmd: echo}
        """,
    )
    assert msg.startswith("params.yaml:3:1:")
    assert "duplicate key 'b'" in msg


def test_matrix_producing_the_same_target_twice_is_a_duplicate_target(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          m:{a}:
            matrix: {a: [x, x]}
            cmd: echo
        """,
    )
    assert msg.startswith("mlbuild.yaml:3:3:")
    assert "duplicate target 'm:x'" in msg


# --------------------------------------------------------------------------- references


def test_undefined_interpolation_reference_is_reported_in_the_cmd(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo ${nope}
        """,
    )
    assert msg.startswith("mlbuild.yaml:4:10:")
    assert "${nope}" in msg


def test_misspelled_variable_suggests_the_defined_one(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        vars: {data_dir: d}
        targets:
          a:
            cmd: echo ${vars.data_dri}
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:10:")
    assert "did you mean 'data_dir'" in msg


def test_undeclared_env_reference_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        env: {SEED: "1"}
        targets:
          a:
            cmd: echo ${env.HOME}
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:10:")
    assert "env.HOME" in msg


def test_misspelled_param_in_cmd_names_it_and_suggests_the_defined_key(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        params: {train: {lr: 0.1}}
        targets:
          a:
            cmd: echo ${params.train.lrr}
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:10:")
    assert "train.lrr" in msg
    assert "did you mean 'train.lr'" in msg


def test_declared_param_missing_from_params_points_at_the_list_entry(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        params: {train: {lr: 0.1}}
        targets:
          a:
            cmd: echo
            params: [train.lr, train.epochs]
        """,
    )
    assert msg.startswith("mlbuild.yaml:6:24:")
    assert "'train.epochs'" in msg


def test_invalid_json_params_file_reports_its_own_line_and_column(ws: Path, load: Load) -> None:
    (ws / "params.json").write_text('{\n  "a": 1,\n  "b": \n}\n')
    msg = config_error(
        load,
        """
        version: 1
        params: [params.json]
        targets:
          a: {cmd: echo}
        """,
    )
    assert msg.startswith("params.json:4:1:")
    assert "invalid JSON" in msg


def test_invalid_toml_params_file_reports_the_line_of_the_error(ws: Path, load: Load) -> None:
    (ws / "params.toml").write_text("a = 1\nb = 2\nc = = 3\n")
    msg = config_error(
        load,
        """
        version: 1
        params: [params.toml]
        targets:
          a: {cmd: echo}
        """,
    )
    assert msg.startswith("params.toml:3:")


def test_params_file_that_is_not_a_mapping_is_an_error(ws: Path, load: Load) -> None:
    (ws / "params.yaml").write_text("- 1\n- 2\n")
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a: {cmd: echo}
        """,
    )
    assert msg.startswith("params.yaml:1:1:")


def test_missing_params_file_is_a_config_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        params: [nothere.yaml]
        targets:
          a: {cmd: echo}
        """,
    )
    assert msg.startswith("mlbuild.yaml:2:10:")
    assert "nothere.yaml" in msg


def test_out_of_range_dep_index_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo ${deps[0]}
        """,
    )
    assert msg.startswith("mlbuild.yaml:4:10:")
    assert "deps[0]" in msg


def test_outs_reference_in_an_out_path_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            outs: ["${outs}"]
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:12:")


# --------------------------------------------------------------------------- deps


def test_dep_on_misspelled_target_suggests_the_existing_target(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          data:raw:
            cmd: echo
            outs: [raw.csv]
          features:train:
            cmd: echo
            deps: [data:rwa]
        """,
    )
    assert msg.startswith("mlbuild.yaml:8:12:")
    assert "data:rwa" in msg
    assert "did you mean 'data:raw'" in msg


def test_dep_on_misspelled_bare_target_suggests_the_existing_target(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          prepare:
            cmd: echo
            outs: [prep.txt]
          train:
            cmd: echo
            deps: [prepar]
        """,
    )
    assert msg.startswith("mlbuild.yaml:8:12:")
    assert "did you mean 'prepare'" in msg


def test_dep_on_a_missing_file_that_nothing_produces_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            deps: [scripts/missing.py]
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:12:")
    assert "scripts/missing.py" in msg


def test_target_depending_on_itself_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            deps: [a]
            outs: [x]
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:12:")


# --------------------------------------------------------------------------- outs


def test_out_declared_by_two_targets_names_the_first_owner(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            outs: [x.csv]
          b:
            cmd: echo
            outs: [y.csv, ./x.csv]
        """,
    )
    assert msg.startswith("mlbuild.yaml:8:19:")
    assert "'x.csv'" in msg and "'a'" in msg


def test_file_out_inside_another_targets_directory_out_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            outs: [data]
          b:
            cmd: echo
            outs: [data/x.csv]
        """,
    )
    assert msg.startswith("mlbuild.yaml:8:")
    assert "data/x.csv" in msg and "'data'" in msg


def test_file_out_inside_own_directory_out_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            outs: [data, data/sub/x.csv]
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:")
    assert "data/sub/x.csv" in msg


def test_same_out_listed_twice_by_one_target_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            outs: [x.csv, ./x.csv]
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:19:")


def test_absolute_out_is_outside_the_workspace(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            outs: [/tmp/x.csv]
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:12:")
    assert "outside the workspace" in msg


def test_dotdot_out_is_outside_the_workspace(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            outs: [models/../../x.csv]
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:12:")
    assert "outside the workspace" in msg


def test_out_through_symlinked_directory_leaving_workspace_is_an_error(
    ws: Path, tmp_path: Path, load: Load
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, ws / "escape")
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            outs: [escape/x.csv]
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:12:")
    assert "symlink" in msg
    assert list(outside.iterdir()) == []


def test_out_through_symlink_that_stays_inside_workspace_is_allowed(ws: Path, load: Load) -> None:
    (ws / "real").mkdir()
    os.symlink(ws / "real", ws / "alias")
    pipeline = load(
        """
        version: 1
        targets:
          a:
            cmd: echo
            outs: [alias/x.csv]
        """
    )
    assert pipeline.targets["a"].outs == ("alias/x.csv",)


def test_out_that_is_a_symlink_leaving_the_workspace_is_an_error(
    ws: Path, tmp_path: Path, load: Load
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("do not overwrite")
    os.symlink(victim, ws / "model.bin")
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            outs: [model.bin]
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:12:")
    assert victim.read_text() == "do not overwrite"


def test_params_file_outside_the_workspace_is_refused(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        params: [../secrets.yaml]
        targets:
          a: {cmd: echo}
        """,
    )
    assert msg.startswith("mlbuild.yaml:2:10:")


# --------------------------------------------------------------------------- matrix, cmd/python


def test_empty_matrix_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          m:{algo}:
            matrix: {}
            cmd: echo
        """,
    )
    assert msg.startswith("mlbuild.yaml:4:13:")
    assert "matrix is empty" in msg


def test_matrix_axis_with_no_values_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          m:{algo}:
            matrix:
              algo: []
            cmd: echo
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:13:")
    assert "matrix.algo" in msg


def test_matrix_variable_missing_from_the_name_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          model:
            matrix: {algo: [a, b]}
            cmd: echo
        """,
    )
    assert msg.startswith("mlbuild.yaml:4:20:")
    assert "algo" in msg


def test_name_placeholder_without_matrix_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          model:{algo}:
            cmd: echo
        """,
    )
    assert msg.startswith("mlbuild.yaml:3:3:")


def test_target_with_both_cmd_and_python_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            python: pkg.mod:fn
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:13:")
    assert "cmd" in msg and "python" in msg


def test_python_that_is_not_module_colon_function_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            python: pkg/mod.py
        """,
    )
    assert msg.startswith("mlbuild.yaml:4:13:")


def test_empty_cmd_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: ["echo", "  "]
        """,
    )
    assert msg.startswith("mlbuild.yaml:4:10:")


def test_default_naming_unknown_target_suggests_one(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        default: [model:prd]
        targets:
          model:prod: {cmd: echo}
        """,
    )
    assert msg.startswith("mlbuild.yaml:2:11:")
    assert "did you mean 'model:prod'" in msg


def test_negative_resource_request_is_an_error(load: Load) -> None:
    msg = config_error(
        load,
        """
        version: 1
        targets:
          a:
            cmd: echo
            resources: {gpu: -1}
        """,
    )
    assert msg.startswith("mlbuild.yaml:5:22:")
    assert "gpu" in msg


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    from mlbuild.config import load_pipeline

    with pytest.raises(ConfigError):
        load_pipeline(str(tmp_path / "mlbuild.yaml"))


def test_find_config_without_any_mlbuild_yaml_is_a_config_error(tmp_path: Path) -> None:
    from mlbuild.config import find_config

    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        find_config(str(deep))
    assert "mlbuild init" in str(info.value)


def test_find_config_walks_up_to_the_nearest_workspace(tmp_path: Path) -> None:
    from mlbuild.config import find_config

    (tmp_path / "mlbuild.yaml").write_text("version: 1\ntargets: {}\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_config(str(deep)) == str(tmp_path / "mlbuild.yaml")


# --------------------------------------------------------------------------- names are data


@pytest.mark.parametrize("name", ["'..'", "'.'", "'data:..'", "'..:x'", "'a:.'"])
def test_dot_and_dotdot_names_or_name_parts_are_refused_with_a_hint(load: Load, name: str) -> None:
    msg = config_error(load, f"targets:\n  {name}: {{cmd: echo}}\n")
    assert msg.startswith("mlbuild.yaml:2:3: invalid target name")
    assert "'.' and '..' cannot be a name or a part of one" in msg
    assert "a name is data, not a path" in msg


@pytest.mark.parametrize("name", ['"a\\n"', '"  "', '"a\\0b"', '""', "'a/b'", "'a:b:c'"])
def test_names_with_control_characters_blanks_or_slashes_are_refused(load: Load, name: str) -> None:
    msg = config_error(load, f"targets:\n  {name}: {{cmd: echo}}\n")
    assert msg.startswith("mlbuild.yaml:2:3: invalid target name")


def test_dotted_names_that_are_not_path_steps_stay_valid(load: Load) -> None:
    pipeline = load(
        "targets:\n  '...': {cmd: echo}\n  .hidden: {cmd: echo}\n  a.b:c.d: {cmd: echo}\n"
    )
    assert list(pipeline.targets) == ["...", ".hidden", "a.b:c.d"]


# --------------------------------------------------------------------------- reserved outs


@pytest.mark.parametrize(
    ("out", "reason"),
    [
        (".mlbuild/cache/x", "inside .mlbuild/, mlbuild's own state"),
        (".git/hooks/pre-commit", "inside .git/, the git repository"),
        ("sub/.Git/config", "inside .git/"),
        ("mlbuild.lock", "it is the lock file"),
        ("mlbuild.yaml", "it is the config file"),
        ("p.json", "it is a params file"),
        ("conf", "it holds 'conf/p.yaml', a params file"),
        ("keys/pub.key", "it is a trusted key"),
    ],
)
def test_reserved_outs_are_refused_at_their_position(
    ws: Path, load: Load, out: str, reason: str
) -> None:
    (ws / "p.json").write_text("{}")
    (ws / "conf").mkdir()
    (ws / "conf" / "p.yaml").write_text("a: 1\n")
    msg = config_error(
        load,
        f"""
        params: [p.json, conf/p.yaml]
        trusted_keys: [keys/pub.key]
        targets:
          a:
            cmd: echo
            outs: [x, '{out}']
        """,
    )
    assert msg.startswith("mlbuild.yaml:6:15:"), msg
    assert f"out '{out}' is reserved: " in msg and reason in msg


def test_an_out_through_a_symlink_into_git_is_refused(ws: Path, load: Load) -> None:
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / "hooks").symlink_to(".git/hooks")
    msg = config_error(load, "targets:\n  a: {cmd: echo, outs: [hooks/pre-commit]}\n")
    assert "(through a symlink: .git/hooks/pre-commit)" in msg


# --------------------------------------------------------------------------- bytes and bombs


def test_a_nul_byte_in_an_out_is_a_config_error(load: Load) -> None:
    msg = config_error(load, 'targets:\n  a: {cmd: echo, outs: ["a\\0b"]}\n')
    assert msg.startswith("mlbuild.yaml:2:25: out path 'a\\x00b' contains a NUL byte")


def test_non_utf8_config_names_the_line_and_column_of_the_bad_byte(
    write_config: Callable[[str], Path],
) -> None:
    from mlbuild.config import load_pipeline

    path = write_config("targets:\n  a: {cmd: echo}\n")
    path.write_bytes(b"targets:\n  a: {cmd: echo \xc3\xa9\xff}\n")  # "é", then a bad byte
    with pytest.raises(ConfigError, match=r"^mlbuild.yaml:2:18: not UTF-8 text: byte 0xff"):
        load_pipeline(str(path))


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_an_alias_bomb_in_a_params_file_is_refused_and_never_cached(ws: Path, load: Load) -> None:
    (ws / "params.yaml").write_text(ALIAS_BOMB)
    msg = config_error(load, "targets:\n  a: {cmd: echo}\n")
    assert msg.startswith("params.yaml:")
    assert "YAML aliases expand to more than 100,000 values" in msg
    assert not (ws / ".mlbuild" / "cache" / "yaml" / "params.yaml.marshal").exists()


def test_aliases_that_expand_a_little_are_fine(ws: Path, load: Load) -> None:
    (ws / "params.yaml").write_text("base: &b {lr: 0.1}\nm1: *b\nm2: *b\n")
    pipeline = load("targets:\n  a: {cmd: 'echo ${params.m2.lr}'}\n")
    assert pipeline.targets["a"].cmd == ("echo 0.1",)


def test_a_big_file_without_aliases_is_not_limited(ws: Path, load: Load) -> None:
    (ws / "params.yaml").write_text("xs: [" + ", ".join(["1"] * 150_000) + "]\n")
    load("targets:\n  a: {cmd: echo}\n")


def test_a_recursive_alias_is_refused(ws: Path, load: Load) -> None:
    (ws / "params.yaml").write_text("a: &a [1, *a]\n")
    msg = config_error(load, "targets:\n  a: {cmd: echo}\n")
    assert msg.startswith("params.yaml:1:4: a YAML alias refers to a node that contains it")


def test_a_stale_oversized_parse_cache_is_ignored(ws: Path, load: Load) -> None:
    load("targets:\n  a: {cmd: echo}\n")
    cached = ws / ".mlbuild" / "cache" / "yaml" / "mlbuild.yaml.marshal"
    assert cached.exists()
    cached.write_bytes(b"\0" * (2 << 20))  # what an old version left for a bomb
    assert list(load("targets:\n  a: {cmd: echo}\n").targets) == ["a"]


def test_a_params_file_that_is_a_directory_is_a_config_error(ws: Path, load: Load) -> None:
    (ws / "conf").mkdir()
    msg = config_error(load, "params: conf\ntargets:\n  a: {cmd: echo}\n")
    assert msg.startswith("mlbuild.yaml:1:9: params file 'conf' is a directory")


def test_a_mlbuild_yaml_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    from mlbuild.config import find_config

    (tmp_path / "mlbuild.yaml").mkdir()
    with pytest.raises(ConfigError, match="is not a file"):
        find_config(str(tmp_path))


def test_a_nul_byte_in_an_env_value_is_a_config_error(load: Load) -> None:
    msg = config_error(load, 'env: {X: "a\\0"}\ntargets:\n  a: {cmd: echo}\n')
    assert msg.startswith("mlbuild.yaml:1:10: env.X has a NUL byte")


# --------------------------------------------------------------------------- executor


@pytest.mark.parametrize(
    ("executor", "at", "message"),
    [
        ("{type: kubernetes}", "kubernetes", "executor type 'kubernetes' is unknown"),
        ("{type: local, address: 'tcp://h:1'}", "'tcp", "executor.address goes with type: dask"),
        ("{type: local, mode: remote}", "remote", "executor.mode goes with type: dask"),
        ("{type: dask, mode: nfs}", "nfs", "executor.mode must be 'shared'"),
        ("{type: dask, jobs: 0}", "0", "executor.jobs must be a positive integer"),
        ("{connect_timeout: 5}", "5", "executor.connect_timeout goes with type: dask"),
        ("{type: dask, connect_timeout: 0}", "0", "must be a number of seconds > 0"),
        ("{type: dask, connect_timeout: '5s'}", "'5s'", "must be a number of seconds > 0"),
        ("{type: dask, connect_timeout: true}", "true", "must be a number of seconds > 0"),
    ],
)
def test_a_wrong_executor_setting_is_a_config_error_at_its_value(
    load: Load, executor: str, at: str, message: str
) -> None:
    line = f"executor: {executor}"
    msg = config_error(load, f"{line}\ntargets:\n  a: {{cmd: echo}}\n")
    assert msg.startswith(f"mlbuild.yaml:1:{line.rindex(at) + 1}:"), msg
    assert message in msg
