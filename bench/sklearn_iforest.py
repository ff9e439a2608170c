"""scikit-learn's IsolationForest on one labelled CSV file: the peer that
radar-bench measures radar against, in the same run, with the protocol of
shared/datasets/BASELINES.md. Prints one JSON object."""

import argparse
import json
import time

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--label", default="label")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--single-row-calls", type=int, default=1000)
    args = ap.parse_args()

    df = pd.read_csv(args.data)
    y = df[args.label].to_numpy()
    X = df.drop(columns=[args.label]).to_numpy(dtype=np.float64)

    fit_s, rates, aucs = [], [], []
    model0 = None
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        model = IsolationForest(n_estimators=100, random_state=seed).fit(X)
        fit_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        scores = -model.score_samples(X)
        rates.append(len(X) / (time.perf_counter() - t0))
        aucs.append(roc_auc_score(y, scores))
        if seed == 0:
            model0 = model

    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(X), size=args.single_row_calls)
    model0.score_samples(X[rows[0] : rows[0] + 1])  # warm-up
    lat = []
    for i in rows:
        t0 = time.perf_counter()
        model0.score_samples(X[i : i + 1])
        lat.append(time.perf_counter() - t0)

    print(
        json.dumps(
            {
                "sklearn": sklearn.__version__,
                "numpy": np.__version__,
                "rows": int(len(X)),
                "features": int(X.shape[1]),
                "fit_seconds_mean": float(np.mean(fit_s)),
                "batch_rows_per_second_mean": float(np.mean(rates)),
                "single_row_us_median": float(np.median(lat) * 1e6),
                "roc_auc_mean": float(np.mean(aucs)),
                "roc_auc_std": float(np.std(aucs)),
            }
        )
    )


if __name__ == "__main__":
    main()
