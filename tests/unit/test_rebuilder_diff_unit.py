"""diff_components: the reasons `explain` prints, from two sets of key components."""

from __future__ import annotations

from typing import Any

from mlbuild.rebuild import diff_components
from mlbuild.results import Reason, ReasonKind


def _components(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "cmd": ["python train.py --lr 0.1"],
        "python": None,
        "code": {"train.py": "xxh3-128:aa", "lib.py": "xxh3-128:bb"},
        "deps": {"data/train.csv": "xxh3-128:01", "data/test.csv": "xxh3-128:02"},
        "params": {"train.lr": 0.1, "seed": 1},
        "env": {"PYTHONHASHSEED": "0"},
        "packages": {"scikit-learn": "1.4.0"},
        "matrix": {},
        "outs": ["models/a.joblib"],
    }
    base.update(changes)
    return base


def test_identical_components_give_no_reasons() -> None:
    assert diff_components(_components(), _components()) == []


def test_changed_param_is_reported_old_to_new() -> None:
    old = _components()
    new = _components(params={"train.lr": 0.2, "seed": 1})
    (reason,) = diff_components(old, new)
    assert reason == Reason(ReasonKind.PARAM, "train.lr", 0.1, 0.2)
    assert reason.describe() == "param train.lr: 0.1 → 0.2"


def test_param_changed_to_a_falsy_value_is_reported() -> None:
    old = _components(params={"flag": True})
    new = _components(params={"flag": False})
    assert diff_components(old, new) == [Reason(ReasonKind.PARAM, "flag", True, False)]


def test_param_added_and_removed_are_reported() -> None:
    old = _components(params={"a": 1})
    new = _components(params={"b": 2})
    reasons = diff_components(old, new)
    assert reasons == [
        Reason(ReasonKind.PARAM, "a", 1, None, change="removed"),
        Reason(ReasonKind.PARAM, "b", None, 2, change="added"),
    ]
    assert [r.describe() for r in reasons] == ["param a removed", "param b added: 2"]


def test_changed_env_value_is_reported() -> None:
    old = _components()
    new = _components(env={"PYTHONHASHSEED": "1"})
    assert diff_components(old, new) == [Reason(ReasonKind.ENV, "PYTHONHASHSEED", "0", "1")]


def test_added_and_removed_deps_are_reported() -> None:
    old = _components()
    new = _components(deps={"data/train.csv": "xxh3-128:01", "data/extra.csv": "xxh3-128:03"})
    reasons = diff_components(old, new)
    assert Reason(ReasonKind.DEP, "data/extra.csv", None, "xxh3-128:03", change="added") in reasons
    assert Reason(ReasonKind.DEP, "data/test.csv", "xxh3-128:02", None, change="removed") in reasons
    assert len(reasons) == 2


def test_changed_dep_digest_is_reported() -> None:
    old = _components()
    new = _components(deps={"data/train.csv": "xxh3-128:ff", "data/test.csv": "xxh3-128:02"})
    (reason,) = diff_components(old, new)
    assert (reason.kind, reason.subject) == (ReasonKind.DEP, "data/train.csv")
    assert reason.describe() == "dep data/train.csv changed"


def test_changed_code_file_is_reported() -> None:
    old = _components()
    new = _components(code={"train.py": "xxh3-128:cc", "lib.py": "xxh3-128:bb"})
    assert diff_components(old, new) == [
        Reason(ReasonKind.CODE, "train.py", "xxh3-128:aa", "xxh3-128:cc")
    ]


def test_new_imported_code_file_is_reported_as_added() -> None:
    old = _components()
    new = _components(
        code={"train.py": "xxh3-128:aa", "lib.py": "xxh3-128:bb", "new.py": "xxh3-128:dd"}
    )
    (reason,) = diff_components(old, new)
    assert (reason.kind, reason.subject, reason.old) == (ReasonKind.CODE, "new.py", None)


def test_changed_command_text_is_reported() -> None:
    old = _components()
    new = _components(cmd=["python train.py --lr 0.2"])
    (reason,) = diff_components(old, new)
    assert reason.kind is ReasonKind.COMMAND
    assert "--lr 0.1" in str(reason.old) and "--lr 0.2" in str(reason.new)


def test_changed_package_version_is_reported() -> None:
    old = _components()
    new = _components(packages={"scikit-learn": "1.5.0"})
    assert diff_components(old, new) == [
        Reason(ReasonKind.PACKAGE, "scikit-learn", "1.4.0", "1.5.0")
    ]


def test_changed_declared_outs_are_reported_but_reordering_is_not() -> None:
    old = _components(outs=["a", "b"])
    assert diff_components(old, _components(outs=["b", "a"])) == []
    (reason,) = diff_components(old, _components(outs=["a", "c"]))
    assert reason.kind is ReasonKind.OUTS_DECLARED


def test_several_changes_are_all_listed_deterministically() -> None:
    old = _components()
    new = _components(
        params={"train.lr": 0.5, "seed": 2},
        env={"PYTHONHASHSEED": "1"},
        code={"train.py": "xxh3-128:ee", "lib.py": "xxh3-128:bb"},
    )
    first = diff_components(old, new)
    assert first == diff_components(dict(reversed(list(old.items()))), new)
    assert {(r.kind, r.subject) for r in first} == {
        (ReasonKind.PARAM, "train.lr"),
        (ReasonKind.PARAM, "seed"),
        (ReasonKind.ENV, "PYTHONHASHSEED"),
        (ReasonKind.CODE, "train.py"),
    }


def test_reason_json_carries_kind_subject_values_and_text() -> None:
    data = Reason(ReasonKind.PARAM, "train.lr", 0.1, 0.2).to_json()
    assert data == {
        "kind": "param",
        "subject": "train.lr",
        "old": 0.1,
        "new": 0.2,
        "text": "param train.lr: 0.1 → 0.2",
    }


def test_param_changed_to_null_is_not_reported_as_removed() -> None:
    (reason,) = diff_components(_components(params={"x": 1}), _components(params={"x": None}))
    assert "removed" not in reason.describe()
    assert "null" in reason.describe()


def test_param_changed_from_null_is_not_reported_as_added() -> None:
    (reason,) = diff_components(_components(params={"x": None}), _components(params={"x": 1}))
    assert "added" not in reason.describe()
