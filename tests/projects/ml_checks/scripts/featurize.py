"""Features from the raw table, written twice: Parquet for training, JSON Lines for humans."""

import sys

import pandas as pd

raw, parquet, jsonl = sys.argv[1:4]
df = pd.read_csv(raw)
features = pd.DataFrame(
    {
        "id": df["id"],
        "income_k": df["income"] / 1000.0,
        "senior": df["age"] >= 60,
        "city": df["city"],
    }
)
features.to_parquet(parquet, index=False)
features.to_json(jsonl, orient="records", lines=True)
