"""scikit-learn IsolationForest ROC-AUC over many seeds, per data set.

Five-seed means are noisy on the high-variance sets (a 5-seed mean has a
standard error of std/sqrt(5)); this measures scikit-learn's mean over more
seeds so radar's parity can be judged against the distribution rather than
one draw of five seeds. Writes JSON to stdout.

    python bench/sklearn_multiseed.py --datasets ../shared/datasets --seeds 50 NAME...
"""

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
    ap.add_argument("--datasets", required=True)
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("names", nargs="+")
    args = ap.parse_args()
    out = {
        "sklearn": sklearn.__version__,
        "seeds": args.seeds,
        "protocol": "IsolationForest(n_estimators=100, random_state=s) for s in 0..seeds-1; "
        "fit and score the full data set; ROC-AUC of -score_samples",
        "measured": time.strftime("%Y-%m-%d"),
        "datasets": {},
    }
    for name in args.names:
        path = f"{args.datasets}/tabular/{name}.csv"
        try:
            df = pd.read_csv(path)
        except FileNotFoundError:
            df = pd.read_csv(path + ".gz")
        y = df["label"].to_numpy()
        X = df.drop(columns=["label"]).to_numpy(dtype=np.float64)
        aucs = [
            roc_auc_score(y, -IsolationForest(n_estimators=100, random_state=s).fit(X).score_samples(X))
            for s in range(args.seeds)
        ]
        out["datasets"][name] = {"mean": float(np.mean(aucs)), "std": float(np.std(aucs))}
    print(json.dumps(out, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
