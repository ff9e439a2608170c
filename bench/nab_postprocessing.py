"""How the constants of radar's NAB post-processing were chosen: reads the
raw detector scores `radar eval nab --out DIR --raw-scores` writes, applies
the anomaly-likelihood post-processing of `radar_pipeline::nab` with other
constants (short mean, tail floor, incident rows), and scores each variant
with NAB's rules (as `radar_detect::nab` implements them: windows from the
label column, probation, scaled sigmoid, one threshold per profile over the
corpus). Prints one line per variant: standard, low-FP, low-FN.

    radar eval nab --data NAB/data --labels NAB/labels/combined_windows.json \
        --detector rcf --out /tmp/nab --raw-scores
    python bench/nab_postprocessing.py /tmp/nab/rcf
"""

import csv
import glob
import math
import os
import sys
from collections import deque

PROFILES = [(1.0, 0.11, 1.0), (1.0, 0.22, 1.0), (1.0, 0.11, 2.0)]


def sigmoid(y):
    return -1.0 if y > 3.0 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation(n):
    return min(int(math.floor(0.15 * n)), 750)


def nab_score(corpus, profile):
    tp_w, fp_w, fn_w = profile
    points, windows_total = [], 0
    for s, (scores, windows) in enumerate(corpus):
        windows_total += len(windows)
        w, start = 0, probation(len(scores))
        for i, sc in enumerate(scores):
            while w < len(windows) and windows[w][1] < i:
                w += 1
            inside = w < len(windows) and windows[w][0] <= i <= windows[w][1]
            if i < start:
                continue
            if inside:
                lo, hi = windows[w]
                weighted = tp_w * sigmoid(-(hi - i + 1) / (hi - lo + 1)) / sigmoid(-1.0)
            elif w == 0:
                weighted = -fp_w
            else:
                lo, hi = windows[w - 1]
                weighted = fp_w * sigmoid((i - hi) / (hi - lo) if hi > lo else float("inf"))
            points.append((sc, (s, w) if inside else None, weighted))
    null, perfect = -fn_w * windows_total, tp_w * windows_total
    points.sort(key=lambda p: -p[0])
    best_window, raw, best, i = {}, null, null, 0
    while i < len(points):
        t = points[i][0]
        while i < len(points) and points[i][0] == t:
            _, key, weighted = points[i]
            if key is None:
                raw += weighted
            else:
                current = best_window.get(key, -fn_w)
                better = max(current, weighted)
                raw += better - current
                best_window[key] = better
            i += 1
        best = max(best, raw)
    return 100 * (best - null) / (perfect - null)


def one_per_incident(scores, rows):
    out, peaks = [], deque()
    for i, s in enumerate(scores):
        while peaks and peaks[0] + rows < i:
            peaks.popleft()
        out.append(s if s > (scores[peaks[0]] if peaks else 0.0) else 0.0)
        while peaks and scores[peaks[-1]] <= s:
            peaks.pop()
        peaks.append(i)
    return out


def likelihood(raw, short, floor):
    n, warm = len(raw), max(probation(len(raw)), 2)
    mean = var = 0.0
    out = []
    for i in range(n):
        recent = raw[max(0, i - short + 1): i + 1]
        avg = sum(recent) / len(recent)
        if i >= warm:
            z = (avg - mean) / math.sqrt(max(var, 1e-12))
            out.append(-math.log(max(0.5 * math.erfc(z / math.sqrt(2)), floor)))
        else:
            out.append(0.0)
        a = 1.0 / (i + 1)
        d = avg - mean
        mean += a * d
        var = (1 - a) * (var + a * d * d)
    return out


def load(folder):
    corpus = []
    for path in sorted(glob.glob(os.path.join(folder, "*", "*.csv"))):
        rows = list(csv.DictReader(open(path)))
        raw = [float(r["anomaly_score"]) for r in rows]
        labels = [r["label"] == "1" for r in rows]
        windows, i = [], 0
        while i < len(labels):
            if labels[i]:
                j = i
                while j + 1 < len(labels) and labels[j + 1]:
                    j += 1
                windows.append((i, j))
                i = j + 1
            else:
                i += 1
        corpus.append((raw, windows))
    return corpus


def main():
    corpus = load(sys.argv[1])
    for short in (1, 5, 10):
        for floor in (1e-10, 1e-300):
            for rows in (16, 32, 64, 256):
                scored = [(one_per_incident(likelihood(r, short, floor), rows), w) for r, w in corpus]
                figures = " ".join(f"{nab_score(scored, p):6.1f}" for p in PROFILES)
                print(f"short {short:>2}  floor {floor:<6g}  incident {rows:>3}   {figures}", flush=True)


if __name__ == "__main__":
    main()
