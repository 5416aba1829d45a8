"""features:train / features:test: a deterministic split, standardized with train statistics."""

from __future__ import annotations

import argparse

from examples.quickstart.common import LABEL, read_table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", choices=["train", "test"], required=True)
    parser.add_argument("--test-size", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("raw")
    parser.add_argument("out")
    args = parser.parse_args()
    frame = read_table(args.raw)
    test = frame.sample(frac=args.test_size, random_state=args.seed)
    train = frame.drop(test.index)
    features = [c for c in frame.columns if c != LABEL]
    mean, std = train[features].mean(), train[features].std().replace(0.0, 1.0)
    part = (train if args.split == "train" else test).copy()
    part[features] = (part[features] - mean) / std
    part.to_csv(args.out, index=False, float_format="%.6g")
    print(f"{args.split}: {len(part)} rows, {len(features)} features")


if __name__ == "__main__":
    main()
