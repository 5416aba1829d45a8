"""data:raw: the breast-cancer data set that scikit-learn ships (no download), as CSV."""

from __future__ import annotations

import argparse
import os

from sklearn.datasets import load_breast_cancer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies mean_radius")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame = frame.sample(frac=1.0, random_state=args.seed).reset_index(drop=True)
    frame["mean_radius"] *= args.scale
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    frame.to_csv(args.out, index=False, float_format="%.6g")
    print(f"wrote {len(frame)} rows to {args.out}")


if __name__ == "__main__":
    main()
