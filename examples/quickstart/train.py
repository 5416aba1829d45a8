"""model:{algo}: a `python:` callable that trains one model and scores it on the test split.

mlbuild calls fit(deps=..., outs=..., params=..., algo=...) in a worker process; ``outs``
is the model, then the plots files if declared (``…roc.csv``: the ROC curve,
``…confusion.csv``: the test predictions, drawn by `mlbuild plots show`), then the metrics
file (plots and metrics files are outs too, metrics files listed last).
"""

from __future__ import annotations

from typing import Any

import joblib
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score, roc_curve

from examples.quickstart.common import LABEL, read_table, write_csv, write_json


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
    test = read_table(deps[1])
    xt, yt = test.drop(columns=[LABEL]), test[LABEL]
    predicted = model.predict(xt)
    scores = model.predict_proba(xt)[:, 1]
    metrics = {
        "accuracy": round(float(accuracy_score(yt, predicted)), 6),
        "f1": round(float(f1_score(yt, predicted)), 6),
        "roc_auc": round(float(roc_auc_score(yt, scores)), 6),
        "rows": {"train": len(train), "test": len(test)},
    }
    for out in outs[1:-1]:  # the plots files declared (none in a shorter pipeline)
        if out.endswith("roc.csv"):
            fpr, tpr, _ = roc_curve(yt, scores)
            rows = [(round(f, 6), round(t, 6)) for f, t in zip(fpr, tpr, strict=True)]
            write_csv(out, ["fpr", "tpr"], rows)
        elif out.endswith("confusion.csv"):
            pairs = zip(yt.tolist(), predicted.tolist(), strict=True)
            write_csv(out, ["actual", "predicted"], pairs)
    write_json(outs[-1], metrics)
    print(f"{algo}: trained on {len(train)} rows, test accuracy {metrics['accuracy']}")
