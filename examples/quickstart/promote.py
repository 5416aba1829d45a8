"""model:prod: copy the candidate with the best metric, refusing one below the floor."""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from examples.quickstart.common import write_json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--metric", required=True)
    parser.add_argument("--min", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("candidates", nargs="+", help="pairs: MODEL METRICS_JSON")
    args = parser.parse_args()
    pairs = list(zip(args.candidates[::2], args.candidates[1::2], strict=True))
    scores = {}
    for model, metrics in pairs:
        with open(metrics, encoding="utf-8") as f:
            scores[model] = json.load(f)[args.metric]
    best = max(sorted(scores), key=lambda m: scores[m])
    if scores[best] < args.min:
        sys.exit(f"best {args.metric} {scores[best]} is below the gate {args.min}")
    shutil.copyfile(best, args.out)
    write_json(args.report, {"winner": best, "metric": args.metric, "scores": scores})
    print(f"promoted {best} ({args.metric}={scores[best]})")


if __name__ == "__main__":
    main()
