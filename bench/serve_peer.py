"""The serving peer: the replaced system's scoring script as a web
service. FastAPI + uvicorn; each request carries one transaction as JSON;
the script turns it into features (the stateless ones a scoring function
can compute from the event alone) and scores them with scikit-learn's
IsolationForest, fitted at start-up on the same history radar trained on.

    python serve_peer.py HISTORY.jsonl PORT WORKERS
"""

import json
import math
import os
import sys
from datetime import datetime

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sklearn.ensemble import IsolationForest

CATEGORIES = {}


def features(event):
    ts = datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))
    category = CATEGORIES.setdefault(event["merchant_category"], len(CATEGORIES))
    return [
        math.log1p(max(float(event["amount"]), 0.0)),
        ts.hour + ts.minute / 60.0,
        float(ts.weekday()),
        float(event["lat"]),
        float(event["lon"]),
        float(category),
    ]


def fit(history):
    rows = []
    with open(history) as f:
        for line in f:
            if line.strip():
                rows.append(features(json.loads(line)))
    model = IsolationForest(n_estimators=100, max_samples=256, random_state=0)
    model.fit(np.asarray(rows))
    scores = -model.score_samples(np.asarray(rows))
    return model, float(np.quantile(scores, 0.99))


app = FastAPI()
# Fitted in each worker as uvicorn imports this module (the launching
# process only sets the history's path).
if "PEER_HISTORY" in os.environ:
    MODEL, THRESHOLD = fit(os.environ["PEER_HISTORY"])


@app.post("/score")
async def score(request: Request):
    try:
        event = json.loads(await request.body())
        row = np.asarray([features(event)])
    except (ValueError, KeyError, TypeError) as e:
        return JSONResponse({"error": str(e)}, status_code=400)
    s = float(-MODEL.score_samples(row)[0])
    return {"score": s, "threshold": THRESHOLD, "anomaly": s > THRESHOLD}


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}


if __name__ == "__main__":
    import uvicorn

    os.environ["PEER_HISTORY"] = sys.argv[1]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    uvicorn.run(
        "serve_peer:app",
        host="127.0.0.1",
        port=int(sys.argv[2]),
        workers=int(sys.argv[3]),
        log_level="warning",
        access_log=False,
    )
