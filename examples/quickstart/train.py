"""model:{algo}: a `python:` callable.

mlbuild calls fit(deps=..., outs=..., params=..., algo=...) in a worker process.
"""

from __future__ import annotations

from typing import Any

import joblib
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from examples.quickstart.common import LABEL, read_table


def fit(deps: list[str], outs: list[str], params: dict[str, Any], algo: str) -> None:
    train = read_table(deps[0])
    x, y = train.drop(columns=[LABEL]), train[LABEL]
    hyper = params[f"train.{algo}"]
    seed = params["seed"]
    model: Any
    if algo == "logreg":
        model = LogisticRegression(C=hyper["C"], max_iter=hyper["max_iter"])
    elif algo == "forest":
        model = RandomForestClassifier(
            n_estimators=hyper["n_estimators"],
            max_depth=hyper["max_depth"],
            random_state=seed,
            n_jobs=1,
        )
    else:
        raise ValueError(f"unknown algorithm {algo!r}")
    model.fit(x, y)
    joblib.dump(model, outs[0])
    print(f"{algo}: trained on {len(train)} rows")
