"""PyOD's ECOD and COPOD (and isotree's extended isolation forest when asked)
on one labelled CSV file: the peers radar-bench measures radar's joint-tail
detectors against, in the same run. Fit on every row, score the same rows
(PyOD's decision_scores_), single-threaded. Prints one JSON object."""

import argparse
import json
import time

import numpy as np
import pandas as pd
import pyod
from pyod.models.copod import COPOD
from pyod.models.ecod import ECOD
from sklearn.metrics import roc_auc_score


def timed(make, X, repeats):
    best, scores = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        model = make().fit(X)
        scores = model.decision_scores_
        best = min(best, time.perf_counter() - t0)
    return best, scores


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--label", default="label")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    df = pd.read_csv(args.data)
    y = df[args.label].to_numpy()
    X = df.drop(columns=[args.label]).to_numpy(dtype=np.float64)
    out = {"pyod": pyod.__version__, "rows": len(X)}
    for name, make in [("ecod", lambda: ECOD(n_jobs=1)), ("copod", lambda: COPOD(n_jobs=1))]:
        seconds, scores = timed(make, X, args.repeats)
        out[name] = {"seconds": seconds, "roc_auc": roc_auc_score(y, scores)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
