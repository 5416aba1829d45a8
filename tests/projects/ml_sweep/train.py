"""A fake trainer: the model file names the algorithm, the metrics come from the matrix.

usage: train.py ALGO ACCURACY LOSS DATA MODEL METRICS
ACCURACY may be a number, "nan", "missing" (no accuracy key), "nofile" (no metrics file
written) or "garbage" (a metrics file that is not JSON).
"""

import json
import sys

algo, accuracy, loss, data, model, metrics = sys.argv[1:7]
with open(data) as f:
    rows = len(f.read().split())
with open(model, "w") as f:
    f.write(f"{algo} model trained on {rows} rows\n")
if accuracy == "nofile":
    sys.exit(0)
if accuracy == "garbage":
    with open(metrics, "w") as f:
        f.write("accuracy: very good\n")
    sys.exit(0)
values = {"algo": algo, "eval": {"loss": float(loss), "rows": rows}}
if accuracy != "missing":
    values["accuracy"] = float(accuracy)
with open(metrics, "w") as f:
    json.dump(values, f)
