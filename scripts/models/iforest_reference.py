#!/usr/bin/env python3
"""Writes anomaly/testdata/iforest_sklearn.json: scikit-learn's IsolationForest
on a fixed data set, the reference for anomaly/src/trained/iforest.rs's tests.

    pip install scikit-learn==1.9.1 numpy
    python3 scripts/models/iforest_reference.py

- `statistical`: sklearn's defaults (100 trees, max_samples min(256, n)),
  contamination 0.05: its scores (negated score_samples) on the test rows and
  its threshold (-offset_). Our trees come from another RNG, so the test
  compares ranks and the threshold, not values.
- `exact`: 10 small trees exported from `estimators_[i].tree_`; imported into
  our model format they must give sklearn's scores and threshold exactly.

All values are float32-representable (sklearn fits and scores in float32), so
`x <= threshold` is decided identically in both.
"""
import json
import pathlib

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest

rng = np.random.default_rng(42)
n_train = 400
cov = [[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 2.0]]
train = rng.multivariate_normal([10.0, 5.0, 0.0], cov, size=n_train)
normal_test = rng.multivariate_normal([10.0, 5.0, 0.0], cov, size=40)
outliers = np.array(
    [[16.0, 5.0, 0.0], [10.0, -1.0, 0.0], [10.0, 5.0, 9.0], [4.0, 11.0, -6.0], [13.0, 2.0, 3.0]]
    + [[10.0 + d, 5.0 - d, 0.5 * d] for d in np.linspace(1.0, 6.0, 15)]
)
test = np.vstack([normal_test, outliers])
train = train.astype(np.float32).astype(np.float64)
test = test.astype(np.float32).astype(np.float64)

stat = IsolationForest(random_state=0, contamination=0.05).fit(train)
small = IsolationForest(n_estimators=10, max_samples=64, random_state=1, contamination=0.1).fit(train)
assert small._max_features == train.shape[1]


def tree(estimator):
    t = estimator.tree_
    return {
        "left": t.children_left.tolist(),
        "right": t.children_right.tolist(),
        "feature": t.feature.tolist(),
        "threshold": t.threshold.tolist(),
        "samples": t.n_node_samples.tolist(),
    }


out = {
    "sklearn_version": sklearn.__version__,
    "features": ["a", "b", "c"],
    "train": train.tolist(),
    "test": test.tolist(),
    "statistical": {
        "n_estimators": 100,
        "max_samples": int(stat.max_samples_),
        "contamination": 0.05,
        "scores": (-stat.score_samples(test)).tolist(),
        "threshold": float(-stat.offset_),
    },
    "exact": {
        "max_samples": int(small.max_samples_),
        "contamination": 0.1,
        "trees": [tree(e) for e in small.estimators_],
        "scores": (-small.score_samples(test)).tolist(),
        "threshold": float(-small.offset_),
    },
}
path = pathlib.Path(__file__).resolve().parents[2] / "anomaly/testdata/iforest_sklearn.json"
path.write_text(json.dumps(out) + "\n")
print(f"wrote {path} ({path.stat().st_size} bytes) with scikit-learn {sklearn.__version__}")
