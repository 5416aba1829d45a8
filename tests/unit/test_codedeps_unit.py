"""Automatic code deps: entry points of a command and the workspace modules they import."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlbuild.codedeps import CodeScanner, entry_points
from mlbuild.store import StateMemo

# --------------------------------------------------------------------------- entry_points


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        ("python a/b.py --rows 10", [("script", "a/b.py")]),
        ("python3 -u x.py", [("script", "x.py")]),
        ("python -m pkg.mod --flag", [("module", "pkg.mod")]),
        ("/usr/bin/python3 tools/z.py", [("script", "tools/z.py")]),
        ("python ./scripts/../scripts/t.py", [("script", "scripts/t.py")]),
        ("mkdir -p out && python3.11 s.py > out/log", [("script", "s.py")]),
        ("python a.py | python3 -m b.c", [("script", "a.py"), ("module", "b.c")]),
        (
            "false || python retry.py; python after.py",
            [("script", "retry.py"), ("script", "after.py")],
        ),
    ],
)
def test_entry_points_find_the_python_programs_a_command_runs(
    cmd: str, expected: list[tuple[str, str]]
) -> None:
    assert entry_points((cmd,), None) == expected


@pytest.mark.parametrize(
    "cmd",
    ['python -c "import train"', "echo python fake.py", "cat data.py", "python", "sh run.sh"],
)
def test_entry_points_ignore_commands_that_run_no_script(cmd: str) -> None:
    assert entry_points((cmd,), None) == []


def test_entry_points_of_every_command_in_a_cmd_list() -> None:
    assert entry_points(("python prep.py", "python -m pkg.train"), None) == [
        ("script", "prep.py"),
        ("module", "pkg.train"),
    ]


def test_python_callable_is_a_module_entry_point() -> None:
    assert entry_points(None, "project.train:fit") == [("module", "project.train")]


def test_entry_points_skip_interpreter_options_that_take_a_value() -> None:
    assert entry_points(("python -W ignore train.py",), None) == [("script", "train.py")]


def test_entry_points_see_through_leading_env_assignments() -> None:
    assert entry_points(("PYTHONHASHSEED=0 python train.py",), None) == [("script", "train.py")]


# --------------------------------------------------------------------------- CodeScanner


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


PROJECT = {
    "scripts/train.py": """
        import json
        import os.path
        import numpy as np
        import helpers
        from project.models import build
        """,
    "scripts/helpers.py": """
        from project import utils
        """,
    "scripts/unused_sibling.py": "",
    "project/__init__.py": "",
    "project/utils.py": "import collections\n",
    "project/unused.py": "",
    "project/models/__init__.py": """
        from .layers import dense
        """,
    "project/models/layers.py": """
        from ..utils import something
        from . import activations
        """,
    "project/models/activations.py": "",
    "project/models/unused_model.py": "",
}


@pytest.fixture
def scanner(ws: Path) -> CodeScanner:
    _write(ws, PROJECT)
    return CodeScanner(str(ws), StateMemo(str(ws), None))


def test_script_pulls_in_local_imports_transitively(scanner: CodeScanner) -> None:
    files = scanner.files_for([("script", "scripts/train.py")])
    assert files == [
        "project/__init__.py",
        "project/models/__init__.py",
        "project/models/activations.py",
        "project/models/layers.py",
        "project/utils.py",
        "scripts/helpers.py",
        "scripts/train.py",
    ]


def test_stdlib_and_installed_packages_are_not_code_deps(scanner: CodeScanner) -> None:
    files = scanner.files_for([("script", "scripts/train.py")])
    assert not any("json" in f or "numpy" in f or "collections" in f for f in files)
    assert all(not f.startswith("/") for f in files)


def test_module_entry_pulls_in_its_package_inits(scanner: CodeScanner) -> None:
    files = scanner.files_for([("module", "project.models.activations")])
    assert files == [
        "project/__init__.py",
        "project/models/__init__.py",
        "project/models/activations.py",
        "project/models/layers.py",
        "project/utils.py",
    ]


def test_plain_import_of_a_submodule(ws: Path) -> None:
    _write(ws, {"main.py": "import pkg.sub.leaf\n", "pkg/__init__.py": "", "pkg/sub/leaf.py": ""})
    scanner = CodeScanner(str(ws), StateMemo(str(ws), None))
    # pkg/sub has no __init__.py (a namespace package): the leaf is still found.
    assert scanner.files_for([("script", "main.py")]) == [
        "main.py",
        "pkg/__init__.py",
        "pkg/sub/leaf.py",
    ]


def test_from_import_of_a_module_inside_a_package(ws: Path) -> None:
    _write(
        ws,
        {
            "main.py": "from pkg import a, b\n",
            "pkg/__init__.py": "",
            "pkg/a.py": "",
            "pkg/b.py": "",
            "pkg/c.py": "",
        },
    )
    scanner = CodeScanner(str(ws), StateMemo(str(ws), None))
    assert scanner.files_for([("script", "main.py")]) == [
        "main.py",
        "pkg/__init__.py",
        "pkg/a.py",
        "pkg/b.py",
    ]


def test_import_cycles_terminate(ws: Path) -> None:
    _write(ws, {"a.py": "import b\n", "b.py": "import a\n"})
    scanner = CodeScanner(str(ws), StateMemo(str(ws), None))
    assert scanner.files_for([("script", "a.py")]) == ["a.py", "b.py"]


def test_imports_inside_functions_and_try_blocks_count(ws: Path) -> None:
    _write(
        ws,
        {
            "main.py": """
                def run():
                    import lazy
                try:
                    import optional
                except ImportError:
                    pass
                """,
            "lazy.py": "",
            "optional.py": "",
        },
    )
    scanner = CodeScanner(str(ws), StateMemo(str(ws), None))
    assert scanner.files_for([("script", "main.py")]) == ["lazy.py", "main.py", "optional.py"]


def test_script_with_syntax_error_is_still_its_own_code_dep(ws: Path) -> None:
    _write(ws, {"broken.py": "def (:\n"})
    scanner = CodeScanner(str(ws), StateMemo(str(ws), None))
    assert scanner.files_for([("script", "broken.py")]) == ["broken.py"]


def test_missing_script_gives_no_code_deps(ws: Path) -> None:
    scanner = CodeScanner(str(ws), StateMemo(str(ws), None))
    assert scanner.files_for([("script", "nope.py")]) == []
    assert scanner.files_for([("module", "nope.mod")]) == []


def test_new_import_is_seen_after_the_file_changes(ws: Path) -> None:
    _write(ws, {"main.py": "", "extra.py": ""})
    memo = StateMemo(str(ws), None)
    assert CodeScanner(str(ws), memo).files_for([("script", "main.py")]) == ["main.py"]
    (ws / "main.py").write_text("import extra\n")
    # A new scanner (one per build) sharing the persistent memo.
    assert CodeScanner(str(ws), memo).files_for([("script", "main.py")]) == [
        "extra.py",
        "main.py",
    ]


def test_parsed_imports_are_remembered_in_the_state_memo(ws: Path) -> None:
    _write(ws, {"main.py": "import helper\n", "helper.py": ""})
    memo = StateMemo(str(ws), str(ws / ".mlbuild" / "state.json"))
    CodeScanner(str(ws), memo).files_for([("script", "main.py")])
    memo.save()
    reloaded = StateMemo(str(ws), str(ws / ".mlbuild" / "state.json"))
    assert "helper" in [name for names in reloaded.imports.values() for name in names]


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        ("(python a.py > sub.txt) 2> log", [("script", "a.py")]),
        ("{ python c.py; } > o", [("script", "c.py")]),
        (
            "echo start\npython first.py\npython second.py",
            [("script", "first.py"), ("script", "second.py")],
        ),
        ("cd sub && python t.py", [("script", "sub/t.py")]),
        ("cd sub && python -m pkg.mod", [("module", "sub/pkg.mod")]),
        ("cd /elsewhere && python -m pkg.mod", []),
        ("(cd sub && python t.py) && python u.py", [("script", "sub/t.py"), ("script", "u.py")]),
        ("cd /tmp && python t.py", []),
        ("time python t.py", [("script", "t.py")]),
        ("nice -n 5 python t.py", [("script", "t.py")]),
        ("nohup python t.py &", [("script", "t.py")]),
        ("exec python t.py", [("script", "t.py")]),
        ("timeout 60 python t.py", [("script", "t.py")]),
        ("timeout -s KILL 60 python t.py", [("script", "t.py")]),
        ("xvfb-run -a python t.py", [("script", "t.py")]),
        ("uv run python t.py", [("script", "t.py")]),
        ("uv run --with numpy t.py", [("script", "t.py")]),
        ("poetry run python t.py", [("script", "t.py")]),
        ("conda run -n ml python t.py", [("script", "t.py")]),
        ("sh -c 'python inner.py --x 1'", [("script", "inner.py")]),
        ('bash -c "cd sub && python t.py"', [("script", "sub/t.py")]),
        ("env -i PATH=/usr/bin python t.py", [("script", "t.py")]),
        ("time nice timeout 9 python t.py", [("script", "t.py")]),
        ("python a.py 2>&1 | tee log.txt", [("script", "a.py")]),
    ],
)
def test_entry_points_see_through_every_command_shape(
    cmd: str, expected: list[tuple[str, str]]
) -> None:
    assert entry_points((cmd,), None) == expected


def test_a_module_run_after_cd_is_found_where_it_runs(ws: Path) -> None:
    (ws / "sub" / "pkg").mkdir(parents=True)
    (ws / "sub" / "pkg" / "__init__.py").write_text("")
    (ws / "sub" / "pkg" / "mod.py").write_text("import helper\n")
    (ws / "sub" / "helper.py").write_text("")
    scanner = CodeScanner(str(ws), StateMemo(str(ws), None))
    assert scanner.files_for(entry_points(("cd sub && python -m pkg.mod",), None)) == [
        "sub/helper.py",
        "sub/pkg/__init__.py",
        "sub/pkg/mod.py",
    ]
