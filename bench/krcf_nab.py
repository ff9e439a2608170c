"""AWS's Random Cut Forest (PyPI `krcf`, bindings of random-cut-forest-by-aws)
over NAB series: per value score() then update(), one forest per series.
Reads the series paths (one per line) from --files, writes each series'
scores (one per line) to --out-dir/<index>.txt, prints timing JSON."""

import argparse
import json
import os
import time

import krcf
import pandas as pd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", required=True)
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args()
    paths = [p.strip() for p in open(args.files) if p.strip()]
    series = [pd.read_csv(p)["value"].astype(float).tolist() for p in paths]
    rows = 0
    seconds = 0.0
    for k, values in enumerate(series):
        forest = krcf.RandomCutForest(
            {
                "dimensions": 1,
                "shingle_size": 8,
                "num_trees": 50,
                "sample_size": 256,
                "internal_shingling": True,
                "output_after": 256,
                "random_seed": 1,
            }
        )
        scores = []
        start = time.perf_counter()
        for v in values:
            point = [v]
            scores.append(forest.score(point))
            forest.update(point)
        seconds += time.perf_counter() - start
        rows += len(values)
        with open(os.path.join(args.out_dir, f"{k}.txt"), "w") as f:
            f.write("\n".join(repr(s) for s in scores))
    print(json.dumps({"krcf": krcf.__version__, "rows": rows, "seconds": seconds, "rows_per_second": rows / seconds}))


if __name__ == "__main__":
    main()
