"""Hostile configuration, through the real CLI: what a param value, a target name, an out
path or the bytes of a YAML/JSON/TOML file can make mlbuild do.

The promises (docs/security.md):

- a value substituted into a ``cmd`` (params, vars, env, matrix values, deps/outs paths,
  the target name) never runs as a command: it is shell-quoted where that is correct
  (outside any quotes, also inside ``$(...)``), and every other shell context is refused
  when the file is loaded (exit 2, file:line:col, a hint);
- a target name is never ``.``/``..`` (nor has such a part), empty, blank or binary;
- nothing mlbuild or git keeps (``.mlbuild/``, ``.git/``, the config, its lock file,
  params files, signing keys) can be declared as an out;
- a YAML alias bomb anywhere mlbuild reads YAML (config, params, metrics) is an error
  naming the file within a second, and never fills the parse cache;
- bad bytes, NUL bytes, unreadable files and wrong shapes are one-line errors naming the
  file (exit 2 for the config and params, exit 1 for a metrics file a command wrote),
  never a traceback (exit 70).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECTS, Project, Run

Workspace = Callable[..., Project]
REPO = Path(__file__).resolve().parents[2]

HOSTILE = [
    "$(touch PWNED)",
    "`touch PWNED`",
    '"; touch PWNED; "',
    "'; touch PWNED; '",
    "x\ntouch PWNED #",
    '\\"$(touch PWNED)\\',
    "}; touch PWNED; ${x",
]


def _hostile_workspace(workspace: Workspace, cmd: str, value: str, **extra: str) -> Project:
    """A one-target workspace whose ``cmd`` uses ``${params.v}`` = ``value``."""
    config = {"targets": {"t": {"cmd": cmd, "outs": ["out.txt"]}}}
    p = workspace(yaml.safe_dump(config, sort_keys=False), dest=extra.get("dest", "ws"))
    p.write("params.yaml", yaml.safe_dump({"v": value}))
    return p


def _refused(run: Run, context: str) -> None:
    assert run.code == 2, (run.code, run.err)
    assert run.err.count("\n") == 1, run.err  # one line, no traceback
    assert "mlbuild.yaml:" in run.err
    assert context in run.err, run.err
    assert "outside" in run.err  # the hint: where it would be quoted for you


# --------------------------------------------------------------------------- param values


def test_param_value_is_one_literal_word_outside_quotes_and_inside_command_substitution(
    workspace: Workspace,
) -> None:
    # Contexts where shlex.quote is exactly right: plain words, a word glued to text, a
    # subshell, $(...) (its content is parsed afresh, also inside double quotes). One
    # target per hostile value.
    targets = {}
    for i in range(len(HOSTILE)):
        targets[f"t{i}"] = {
            "cmd": (
                f"printf '%s|' ${{params.v{i}}} --n=${{params.v{i}}} > ${{outs[0]}}; "
                f'( printf "%s|" "$(printf %s ${{params.v{i}}})" ) >> ${{outs[0]}}; '
                f"printf %s $(printf %s ${{params.v{i}}} | wc -c) >> ${{outs[0]}}"
            ),
            "outs": [f"out{i}.txt"],
        }
    p = workspace(yaml.safe_dump({"targets": targets}, sort_keys=False))
    p.write("params.yaml", yaml.safe_dump({f"v{i}": v for i, v in enumerate(HOSTILE)}))
    p.build()
    for i, value in enumerate(HOSTILE):
        size = len(value.encode())
        assert p.read(f"out{i}.txt") == f"{value}|--n={value}|{value}|{size}", value
    assert not p.path("PWNED").exists()


# Each value runs a command in that context with plain shlex.quote (checked with dash and
# bash: a backtick breaks out of bash's backticks, a line "EOF" out of a quoted heredoc).
RUNS = "$(touch PWNED)"
NEWLINE = "x\ntouch PWNED #"


@pytest.mark.parametrize(
    ("cmd", "context", "value"),
    [
        ('echo "--name=${params.v}" > ${outs[0]}', "inside double quotes", RUNS),
        ("echo '${params.v}' > ${outs[0]}", "inside single quotes", RUNS),
        ("echo `echo ${params.v}` > ${outs[0]}", "inside backticks", "`; touch PWNED; `"),
        ('echo "$(echo `echo ${params.v}`)" > ${outs[0]}', "inside backticks", "`;touch PWNED;`"),
        ("cat > ${outs[0]} <<EOF\n${params.v}\nEOF", "inside a here-document", RUNS),
        (
            "cat > ${outs[0]} <<'EOF'\n${params.v}\nEOF",
            "inside a here-document",
            "x\nEOF\ntouch PWNED\n",
        ),
        ("echo $${X:-${params.v}} > ${outs[0]}", "inside a ${...} shell expansion", RUNS),
        ('echo "$${X:-${params.v}}" > ${outs[0]}', "inside a ${...} shell expansion", RUNS),
        ("echo $(( ${params.v} + 1 )) > ${outs[0]}", "inside $((...))", RUNS),
        ("echo \\${params.v} > ${outs[0]}", "right after a backslash", NEWLINE),
        ("echo x > ${outs[0]} # ${params.v}", "inside a comment", NEWLINE),
        ("python -c 'print(\"${params.v}\")' > ${outs[0]}", "inside single quotes", RUNS),
    ],
    ids=[
        "double-quotes",
        "single-quotes",
        "backticks",
        "backticks-in-cmdsubst-in-dquotes",
        "heredoc",
        "quoted-heredoc",
        "shell-expansion",
        "shell-expansion-in-dquotes",
        "arithmetic",
        "backslash",
        "comment",
        "program-in-single-quotes",
    ],
)
def test_param_value_in_a_context_it_cannot_be_quoted_for_is_refused_before_running(
    workspace: Workspace, cmd: str, context: str, value: str
) -> None:
    p = _hostile_workspace(workspace, cmd, value)
    _refused(p.mlbuild("build"), context)
    assert not p.path("PWNED").exists()
    assert not p.path("out.txt").exists()


def test_every_data_value_is_checked_not_only_params(workspace: Workspace) -> None:
    # vars, env, matrix values, deps/outs paths and the target name come from data too.
    cases = [
        ("vars: {x: a}\n", 'echo "${vars.x}"', "${vars.x}"),
        ("env: {X: a}\n", "echo '${env.X}'", "${env.X}"),
        ("", 'echo "${outs[0]}"', "${outs[0]}"),
        ("", "echo `cat ${deps}`", "${deps}"),
        ("", 'echo "${target}"', "${target}"),
    ]
    for i, (top, cmd, expr) in enumerate(cases):
        p = workspace(
            f"{top}targets:\n  t:\n    cmd: {json.dumps(cmd)}\n"
            "    deps: [in.txt]\n    outs: [o.txt]\n",
            {"in.txt": "x"},
            dest=f"ws{i}",
        )
        run = p.mlbuild("validate")
        assert run.code == 2, (cmd, run.err)
        assert expr in run.err
    p = workspace(
        "targets:\n  'm:{a}':\n    matrix: {a: [x]}\n    cmd: echo \"${a}\"\n",
        dest="matrix",
    )
    run = p.mlbuild("validate")
    assert run.code == 2 and "${a}" in run.err and "double quotes" in run.err


def test_raw_interpolation_still_opts_out_in_any_context(workspace: Workspace) -> None:
    p = _hostile_workspace(workspace, 'printf %s "<${raw:params.v}>" > ${outs[0]}', "a b")
    p.build()
    assert p.read("out.txt") == "<a b>"


def test_a_raw_value_that_opens_a_quote_makes_the_next_value_refused(
    workspace: Workspace,
) -> None:
    # ${raw:...} is pasted as shell text, so it can change the context of what follows.
    p = workspace(
        "vars: {q: '\"'}\ntargets:\n  t:\n    cmd: echo ${raw:vars.q} ${params.v} ${raw:vars.q}\n"
    )
    p.write("params.yaml", yaml.safe_dump({"v": "$(touch PWNED)"}))
    _refused(p.mlbuild("build"), "inside double quotes")
    assert not p.path("PWNED").exists()


def test_shipped_configs_still_load(project: Callable[..., Project], tmp_path: Path) -> None:
    # The demo and every test project: none puts a value where it would be refused.
    for name in sorted(p.name for p in PROJECTS.iterdir() if (p / "mlbuild.yaml").exists()):
        run = project(name, dest=name).mlbuild("validate")
        assert run.code == 0, (name, run.err)
    demo = tmp_path / "demo"
    demo.mkdir()
    for rel in ("mlbuild.yaml", "params.yaml"):
        shutil.copy(REPO / rel, demo / rel)
    shutil.copytree(REPO / "examples", demo / "examples")
    run = Project(demo).mlbuild("validate")
    assert run.code == 0, run.err


# --------------------------------------------------------------------------- target names


@pytest.mark.parametrize(
    "name",
    ['".."', '"."', '"data:.."', '"a\\n"', '"   "'],  # more shapes: the unit tests
)
def test_a_target_name_that_could_become_a_path_is_a_config_error(
    workspace: Workspace, name: str
) -> None:
    p = workspace(f"targets:\n  ok:\n    cmd: touch RAN\n  {name}:\n    cmd: touch RAN\n")
    run = p.mlbuild("build")
    assert run.code == 2, run.err
    assert "mlbuild.yaml:4:3: invalid target name" in run.err
    assert "(" in run.err  # a hint
    assert not p.path("RAN").exists()
    assert not p.path(".mlbuild/aside").exists()


def test_a_matrix_value_that_makes_a_dotdot_name_is_a_config_error(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n  'model:{algo}':\n    matrix: {algo: [a, '..']}\n    cmd: touch RAN\n"
    )
    run = p.mlbuild("build")
    assert run.code == 2
    assert "invalid target name 'model:..'" in run.err
    assert not p.path("RAN").exists()


def test_ordinary_names_stay_valid(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n  data:raw: {cmd: 'true'}\n  a.b-c_d: {cmd: 'true'}\n  '...': {cmd: 'true'}\n"
        "  'model:{algo}':\n    matrix: {algo: [x, y.z]}\n    cmd: 'true'\n"
    )
    run = p.mlbuild("validate")
    assert run.code == 0, run.err


# --------------------------------------------------------------------------- reserved outs


@pytest.mark.parametrize(
    ("out", "why"),
    [
        (".mlbuild/cache", ".mlbuild"),
        (".mlbuild", ".mlbuild"),
        (".MLBUILD/x", ".mlbuild"),
        ("mlbuild.lock", "lock file"),
        ("mlbuild.yaml", "config file"),
        ("params.yaml", "params file"),
        ("conf", "params file"),
        (".git/hooks/pre-commit", ".git"),
        (".git", ".git"),
        ("vendor/lib/.git/hooks/post-checkout", ".git"),
        ("hooks/pre-commit", ".git"),  # hooks -> .git/hooks
        ("keys/signing.key", "signing key"),
        ("./x/..", "workspace itself"),
    ],
)
def test_reserved_paths_cannot_be_outs(workspace: Workspace, out: str, why: str) -> None:
    p = workspace(
        "params: [params.yaml, conf/more.yaml]\n"
        "signing: {key: keys/signing.key}\n"
        f"targets:\n  t:\n    cmd: touch RAN\n    outs: ['{out}']\n",
        {"params.yaml": "a: 1\n", "conf/more.yaml": "b: 2\n", "keys/signing.key": "k"},
    )
    os.makedirs(p.path(".git/hooks"))
    os.symlink(".git/hooks", p.path("hooks"))
    run = p.mlbuild("build")
    assert run.code == 2, run.err
    assert "mlbuild.yaml:6:" in run.err, run.err
    assert why in run.err
    assert not p.path("RAN").exists()
    assert p.read("params.yaml") == "a: 1\n"


def test_reserved_metrics_file_is_refused(workspace: Workspace) -> None:
    p = workspace("targets:\n  t:\n    cmd: touch RAN\n    metrics: [.mlbuild/m.json]\n")
    run = p.mlbuild("build")
    assert run.code == 2 and ".mlbuild" in run.err
    assert not p.path("RAN").exists()


def test_another_config_file_reserves_its_own_name_and_lock(workspace: Workspace) -> None:
    for out, why in (("other.yaml", "config file"), ("other.lock", "lock file")):
        p = workspace("targets: {}\n", dest=f"ws-{out}")
        p.write("other.yaml", f"targets:\n  t:\n    cmd: touch RAN\n    outs: [{out}]\n")
        run = p.mlbuild("-f", "other.yaml", "build")
        assert run.code == 2, run.err
        assert why in run.err
        assert not p.path("RAN").exists()


def test_deps_on_reserved_files_are_fine(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n  t:\n    cmd: cat params.yaml > ${outs[0]}\n"
        "    deps: [params.yaml, mlbuild.yaml]\n    outs: [o.txt]\n",
        {"params.yaml": "a: 1\n"},
    )
    p.build()
    assert p.read("o.txt") == "a: 1\n"


# --------------------------------------------------------------------------- YAML bombs

BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)

MAPPING_BOMB = (
    "a: &a {"
    + ", ".join(f"k{i}: 1" for i in range(9))
    + "}\n"
    + "".join(
        f"{n}: &{n} {{" + ", ".join(f"k{i}: *{p}" for i in range(9)) + "}\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
)


def _quick(p: Project, *args: str) -> Run:
    started = time.monotonic()
    run = p.mlbuild(*args, timeout=20)
    assert time.monotonic() - started < 10, "the bomb was expanded"
    return run


def test_a_yaml_alias_bomb_in_an_unused_params_file_is_refused_quickly(
    workspace: Workspace,
) -> None:
    assert len(BOMB) < 400
    p = workspace("targets:\n  t:\n    cmd: touch RAN\n", {"params.yaml": BOMB})
    run = _quick(p, "build")
    assert run.code == 2, run.err
    assert run.err.startswith("mlbuild: error: params.yaml:"), run.err
    assert "alias" in run.err
    assert not p.path("RAN").exists()
    cached = p.path(".mlbuild/cache/yaml")
    assert sum(f.stat().st_size for f in cached.rglob("*") if f.is_file()) < 100_000


def test_a_yaml_alias_bomb_in_mlbuild_yaml_is_refused_quickly(workspace: Workspace) -> None:
    inline = "".join("  " + line + "\n" for line in BOMB.splitlines())
    p = workspace("params:\n" + inline + "targets:\n  t:\n    cmd: touch RAN\n")
    run = _quick(p, "validate")
    assert run.code == 2, run.err
    assert "mlbuild.yaml:" in run.err and "alias" in run.err


@pytest.mark.parametrize(
    "text",
    [BOMB, MAPPING_BOMB, "a: &a [*a]\n", "x: " + "[" * 900 + "]" * 900 + "\n"],
    ids=["list-bomb", "mapping-bomb", "recursive-alias", "deep"],
)
def test_a_hostile_metrics_file_fails_the_target_naming_it(workspace: Workspace, text: str) -> None:
    p = workspace(
        "targets:\n  t:\n    cmd: cp src.yaml ${outs[0]}\n    metrics: [m.yaml]\n",
        {"src.yaml": text},
    )
    run = _quick(p, "build")
    assert run.code == 1, run.err
    assert "metrics file m.yaml" in run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize(
    "text",
    ["a: &a [*a]\n", "x:\n" + "".join("  " * i + "- \n" for i in range(1, 900))],
    ids=["recursive-alias", "deep"],
)
def test_a_recursive_or_very_deep_params_file_is_a_config_error(
    workspace: Workspace, text: str
) -> None:
    p = workspace("targets:\n  t:\n    cmd: 'true'\n", {"params.yaml": text})
    run = _quick(p, "validate")
    assert run.code == 2, run.err
    assert "params.yaml:" in run.err


# --------------------------------------------------------------------------- bytes and files


def test_non_utf8_mlbuild_yaml_is_a_config_error_with_a_position(workspace: Workspace) -> None:
    p = workspace("")
    p.path("mlbuild.yaml").write_bytes(b"targets:\n  t:\n    cmd: echo \xff\n")
    run = p.mlbuild("validate")
    assert run.code == 2, run.err
    assert run.err.startswith("mlbuild: error: mlbuild.yaml:3:15: not UTF-8"), run.err


@pytest.mark.parametrize("name", ["params.yaml", "p.json", "p.toml"])
def test_non_utf8_params_file_is_a_config_error_naming_it(workspace: Workspace, name: str) -> None:
    p = workspace(f"params: [{name}]\ntargets:\n  t:\n    cmd: 'true'\n")
    body = {"params.yaml": b"a: \xff\n", "p.json": b'{"a": "\xff"}', "p.toml": b'a = "\xff"\n'}
    p.path(name).write_bytes(body[name])
    run = p.mlbuild("validate")
    assert run.code == 2, run.err
    assert f"{name}:1:" in run.err and "UTF-8" in run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize("name", ["p.json", "p.toml"])
def test_deeply_nested_json_or_toml_params_is_a_config_error(
    workspace: Workspace, name: str
) -> None:
    p = workspace(f"params: [{name}]\ntargets:\n  t:\n    cmd: 'true'\n")
    deep = "[" * 100_000 + "]" * 100_000
    p.write(name, '{"a": ' + deep + "}" if name == "p.json" else "a = " + deep + "\n")
    run = p.mlbuild("validate")
    assert run.code == 2, run.err
    assert name in run.err and "Traceback" not in run.err


def test_params_file_that_is_a_list_is_a_config_error(workspace: Workspace) -> None:
    p = workspace("params: [p.json]\ntargets:\n  t:\n    cmd: 'true'\n", {"p.json": "[1, 2]"})
    run = p.mlbuild("validate")
    assert run.code == 2
    assert "p.json:1:1: a params file must hold a mapping" in run.err


def test_params_file_that_is_a_directory_is_a_config_error(workspace: Workspace) -> None:
    p = workspace("params: [conf]\ntargets:\n  t:\n    cmd: 'true'\n")
    p.path("conf").mkdir()
    run = p.mlbuild("validate")
    assert run.code == 2, run.err
    assert "params file 'conf'" in run.err and "directory" in run.err


def test_config_that_is_a_directory_is_a_config_error(workspace: Workspace) -> None:
    p = workspace("targets: {}\n")
    p.path("cfg.yaml").mkdir()
    run = p.mlbuild("-f", "cfg.yaml", "validate")
    assert run.code == 2, run.err
    assert "cfg.yaml" in run.err and "directory" in run.err


def test_unreadable_config_or_params_file_is_a_config_error(workspace: Workspace) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: file modes do not stop root from reading")
    p = workspace("targets:\n  t:\n    cmd: 'true'\n", {"params.yaml": "a: 1\n"})
    p.path("params.yaml").chmod(0)
    run = p.mlbuild("validate")
    assert run.code == 2 and "params.yaml" in run.err and "ermission" in run.err
    p.path("mlbuild.yaml").chmod(0)
    run = p.mlbuild("-f", "mlbuild.yaml", "validate")
    assert run.code == 2 and "mlbuild.yaml" in run.err and "ermission" in run.err


@pytest.mark.parametrize(
    ("entry", "what"),
    [
        ('outs: ["a\\0b"]', "out"),
        ('deps: ["a\\0b"]', "dep"),
        ('deps: ["a*\\0b"]', "dep"),
        ('metrics: ["m\\0.json"]', "metrics file"),
    ],
)
def test_a_nul_byte_in_a_path_is_a_config_error(
    workspace: Workspace, entry: str, what: str
) -> None:
    p = workspace(f"targets:\n  t:\n    cmd: touch RAN\n    {entry}\n")
    run = p.mlbuild("build")
    assert run.code == 2, run.err
    assert "mlbuild.yaml:4:" in run.err and "NUL" in run.err and what in run.err
    assert not p.path("RAN").exists()


def test_a_nul_byte_in_a_params_file_name_or_a_command_is_a_config_error(
    workspace: Workspace,
) -> None:
    for i, (config, needle) in enumerate(
        [
            ('params: ["p\\0.yaml"]\ntargets: {t: {cmd: "true"}}\n', "params file"),
            ('params: {v: "a\\0b"}\ntargets: {t: {cmd: "echo ${params.v}"}}\n', "${params.v}"),
            ('targets: {t: {cmd: "echo a\\0b"}}\n', "NUL"),
            ('env: {X: "a\\0b"}\ntargets: {t: {cmd: "true"}}\n', "env.X"),
        ]
    ):
        p = workspace(config, dest=f"ws{i}")
        run = p.mlbuild("build")
        assert run.code == 2, (config, run.err)
        assert "NUL" in run.err and needle in run.err, run.err
