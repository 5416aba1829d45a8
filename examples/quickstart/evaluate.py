"""eval:{algo}: accuracy / F1 / ROC AUC of a model on the test split, as metrics JSON."""

from __future__ import annotations

import sys

import joblib
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from examples.quickstart.common import LABEL, read_table, write_json


def main() -> None:
    model_path, test_path, out = sys.argv[1:4]
    test = read_table(test_path)
    x, y = test.drop(columns=[LABEL]), test[LABEL]
    model = joblib.load(model_path)
    predicted = model.predict(x)
    metrics = {
        "accuracy": round(float(accuracy_score(y, predicted)), 6),
        "f1": round(float(f1_score(y, predicted)), 6),
        "roc_auc": round(float(roc_auc_score(y, model.predict_proba(x)[:, 1])), 6),
        "rows": len(test),
    }
    write_json(out, metrics)
    print(f"{model_path}: {metrics}")


if __name__ == "__main__":
    main()
