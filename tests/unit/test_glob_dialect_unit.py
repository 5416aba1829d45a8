"""One glob dialect for deps: an out and a file at the same path get the same answer.

`glob_regex` (matched against declared outs) and `expand_glob` (the files on disk) must
agree on every path, and both must mean what Python's ``glob(recursive=True)`` means."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

from mlbuild.config.paths import expand_glob, glob_regex

FILES = [
    "top.csv",
    "Ab.csv",
    "README",
    "x",
    "a/b",
    "a[/]b",
    "aXb",
    "a^b",
    ".dot.csv",
    ".hidden/f.csv",
    ".hidden/x",
    ".git/HEAD",
    ".mlbuild/cache/obj",
    "data/a.csv",
    "data/b.txt",
    "data/c.csv",
    "data/.h",
    "data/.hidden/x.csv",
    "data/.hidden/x",
    "data/sub/c.csv",
    "data/sub/.e.csv",
    "data/sub/deep/d.csv",
    "data/sub/deep/x",
    "data/x",
    "data/xy",
    "data/^",
    "data/!",
    "data/]",
    "data/[",
    "data/a[b",
    "data/-",
    "data/+",
    "data/0",
    "data/ab",
]
LINKS = {  # link -> target, relative to the link's directory
    "data/link": "sub",
    "data/flink.csv": "a.csv",
    "data/broken.csv": "nowhere",
}
PATTERNS = [
    "*",
    "*.csv",
    "?",
    "**",
    "**/*",
    "**/*.csv",
    "**/x",
    "**/x*",
    "**/.*",
    "**/sub/**",
    ".*",
    ".*/*",
    ".*/**",
    ".hidden/*",
    "[A-Z]*",
    "[.]*",
    "a[!x]b",
    "a[^x]b",
    "a[/]b",
    "a?b",
    "a*b",
    "[a]/b",
    "*/b",
    "*/*/*",
    "data/*",
    "data/.*",
    "data/?h",
    "data/[.]h",
    "data/?",
    "data/??",
    "data/**",
    "data/**/*",
    "data/**/*.csv",
    "data/**/**",
    "data/**/**/*.csv",
    "data/**.csv",
    "data/sub/**.csv",
    "data/*/*.csv",
    "data/*/*",
    "data/sub/**/d.csv",
    "data/[ab]*",
    "data/[!a]*",
    "data/[^a]*",
    "data/[a-c].csv",
    "data/[!a-c]*",
    "data/[z-a]",
    "data/[+--]",
    "data/[]]",
    "data/[!]]*",
    "data/[",
    "data/*[",
    "data/[[]",
    "data/a[b",
    "data/a[[]b",
    "data/[!]",
    "data/l*/*.csv",
    "data/link/**",
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("globtree").resolve()
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    for rel, target in LINKS.items():
        os.symlink(target, root / rel)
    return root


def _paths(root: Path) -> tuple[list[str], list[str]]:
    """(files, other paths: directories and broken links) of the tree, links not followed."""
    files: list[str] = []
    others: list[str] = []
    for here, dirs, names in os.walk(root):
        rel = os.path.relpath(here, root).replace(os.sep, "/")
        for name in dirs + names:
            path = name if rel == "." else f"{rel}/{name}"
            (files if (root / path).is_file() else others).append(path)
    return sorted(files), sorted(others)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_an_out_and_a_file_at_the_same_path_get_the_same_answer(
    tree: Path, pattern: str
) -> None:
    on_disk = set(expand_glob(str(tree), pattern))
    regex = glob_regex(pattern)
    files, _ = _paths(tree)
    disagree = [f for f in files if bool(regex.fullmatch(f)) != (f in on_disk)]
    assert disagree == [], f"{pattern!r}: regex and disk disagree on {disagree}"


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_dialect_is_python_glob_recursive(tree: Path, pattern: str) -> None:
    listed = {
        p.replace(os.sep, "/")
        for p in glob.glob(pattern, root_dir=tree, recursive=True)
        if not p.endswith(os.sep)  # ``a/**`` lists ``a/`` itself: not a path an out can be
    }
    assert expand_glob(str(tree), pattern) == sorted(p for p in listed if (tree / p).is_file())
    regex = glob_regex(pattern)
    files, others = _paths(tree)
    disagree = [p for p in files + others if bool(regex.fullmatch(p)) != (p in listed)]
    assert disagree == [], f"{pattern!r}: regex and glob.glob disagree on {disagree}"


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("data/*", "data/.h", False),  # a wildcard never matches a leading dot
        ("data/?h", "data/.h", False),
        ("data/[.]h", "data/.h", False),
        ("data/.*", "data/.h", True),  # unless the segment starts with a literal dot
        ("data/**.csv", "data/b.csv", True),  # ``**`` inside a segment is ``*``
        ("data/**.csv", "data/sub/c.csv", False),
        ("a[!x]b", "a/b", False),  # nothing matches ``/`` but ``/``
        ("a[!x]b", "ayb", True),
        ("a[^x]b", "a^b", True),  # ``^`` is a member, as in fnmatch
        ("a[^x]b", "ayb", False),
        ("a[+-0]b", "a/b", False),  # not even a range spanning ``/``
        ("a[/]b", "a[/]b", True),  # cut at ``/`` first: two literal segments
        ("a[/]b", "a/b", False),
        ("a[b", "a[b", True),  # an unclosed ``[`` is a literal
        ("**/x", "x", True),  # ``**/`` is zero or more directories
        ("**/x", "a/b/x", True),
        ("**/x", ".h/x", False),  # never hidden ones
        ("**/x", "a/.h/x", False),
        ("data/**", "data", False),
        ("data/**", "data/sub/c.csv", True),
        ("data/**", "data/.h", False),
        ("data/**/.h", "data/sub/.h", True),
        ("*.csv", "A.csv", True),
        ("a*", "A", False),  # case-sensitive
    ],
)
def test_glob_regex_follows_the_documented_dialect(
    pattern: str, path: str, matches: bool
) -> None:
    assert bool(glob_regex(pattern).fullmatch(path)) is matches


def test_double_star_does_not_loop_through_a_link_to_an_ancestor(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x").write_text("")
    os.symlink("..", tmp_path / "a" / "b" / "up")  # a/b/up -> a
    os.symlink("b", tmp_path / "a" / "same")  # a/same -> a/b: not a loop, listed again
    assert expand_glob(str(tmp_path), "**/x") == ["a/b/x", "a/same/x"]
