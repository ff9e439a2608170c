"""LightGBM and XGBoost on the supervised part's inputs (a stream's
features plus the Isolation Forest's score), trained on the labels known
when training ended and judged against the events' truth: the peers that
radar-bench supervised measures radar's boosted trees against, in the same
run, with the same parameters. Prints one JSON object."""

import argparse
import json
import statistics
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score


def single_row_us(predict, X, calls):
    times = []
    for i in range(calls):
        row = X[i % len(X)].reshape(1, -1)
        t0 = time.perf_counter()
        predict(row)
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--learn", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--trees", type=int, default=400)
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--pos-weight", type=float, default=5.0)
    ap.add_argument("--single-row-calls", type=int, default=2000)
    args = ap.parse_args()

    learn = pd.read_csv(args.learn)
    test = pd.read_csv(args.test)
    y = learn.pop("label").to_numpy()
    truth = test.pop("truth").to_numpy()
    X = learn.to_numpy(dtype=np.float64)
    Xt = test.to_numpy(dtype=np.float64)
    out = {"rows": len(X), "test_rows": len(Xt), "features": X.shape[1]}

    # One thread each, as radar's fit here.
    lgbm = lgb.LGBMClassifier(
        n_estimators=args.trees, learning_rate=args.learning_rate, max_depth=args.depth,
        num_leaves=2 ** args.depth, min_child_samples=20, reg_lambda=1.0,
        scale_pos_weight=args.pos_weight, max_bin=255, n_jobs=1, verbose=-1)
    t0 = time.perf_counter()
    lgbm.fit(X, y)
    fit = time.perf_counter() - t0
    p = lgbm.predict_proba(Xt)[:, 1]
    out["lightgbm"] = {
        "version": lgb.__version__,
        "average_precision": average_precision_score(truth, p),
        "fit_seconds": fit,
        "single_row_us": single_row_us(lambda r: lgbm.predict_proba(r), Xt, args.single_row_calls),
    }

    xg = xgb.XGBClassifier(
        n_estimators=args.trees, learning_rate=args.learning_rate, max_depth=args.depth,
        min_child_weight=1e-3, reg_lambda=1.0, scale_pos_weight=args.pos_weight,
        tree_method="hist", max_bin=255, n_jobs=1)
    t0 = time.perf_counter()
    xg.fit(X, y)
    fit = time.perf_counter() - t0
    p = xg.predict_proba(Xt)[:, 1]
    booster = xg.get_booster()
    out["xgboost"] = {
        "version": xgb.__version__,
        "average_precision": average_precision_score(truth, p),
        "fit_seconds": fit,
        "single_row_us": single_row_us(
            lambda r: booster.inplace_predict(r), Xt, args.single_row_calls),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
