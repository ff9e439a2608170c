"""River's HalfSpaceTrees on one tabular data set, in BASELINES.md's protocol:
features min-max scaled to [0, 1] (a constant column becomes 0), one pass in
the order np.random.default_rng(0).permutation(n), score_one then learn_one.
Writes the order (one row index per line) to --order-out so radar runs the
same rows in the same order. Prints JSON on stdout."""

import argparse
import json
import time

import numpy as np
import pandas as pd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--order-out", required=True)
    ap.add_argument("--skip-river", action="store_true")
    ap.add_argument("--n-trees", type=int, default=25)
    ap.add_argument("--height", type=int, default=15)
    ap.add_argument("--window", type=int, default=250)
    ap.add_argument("--seeds", type=int, default=1, help="River seeds 0..N-1; AUC is their mean")
    args = ap.parse_args()

    df = pd.read_csv(args.data)
    y = df["label"].to_numpy()
    x = df.drop(columns=["label"]).to_numpy(dtype=float)
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    x = np.where(hi > lo, (x - lo) / span, 0.0)
    order = np.random.default_rng(0).permutation(len(x))
    np.savetxt(args.order_out, order, fmt="%d")
    out = {"rows": int(len(x))}
    if not args.skip_river:
        import river
        from river.anomaly import HalfSpaceTrees
        from sklearn.metrics import roc_auc_score

        names = [f"f{i}" for i in range(x.shape[1])]
        aucs, rates, builds = [], [], []
        for seed in range(args.seeds):
            model = HalfSpaceTrees(
                n_trees=args.n_trees, height=args.height, window_size=args.window, seed=seed
            )
            scores = np.zeros(len(x))
            build = 0.0
            start = time.perf_counter()
            for k, i in enumerate(order):
                row = dict(zip(names, x[i]))
                scores[k] = model.score_one(row)
                if k == 0:
                    t = time.perf_counter()
                    model.learn_one(row)
                    build = time.perf_counter() - t
                else:
                    model.learn_one(row)
            seconds = time.perf_counter() - start - build
            aucs.append(float(roc_auc_score(y[order], scores)))
            rates.append(len(x) / seconds)
            builds.append(build)
        out.update(
            river=river.__version__,
            roc_auc=float(np.mean(aucs)),
            roc_aucs=aucs,
            rows_per_second=float(np.mean(rates)),
            build_seconds=float(np.mean(builds)),
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
