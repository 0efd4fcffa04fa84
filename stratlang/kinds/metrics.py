"""Scores of predictions: the loss's natural metrics (RMSE, ANLL, accuracy, AUROC)."""

from __future__ import annotations

import numpy as np

# metric name → True when larger is better
GREATER_IS_BETTER = {"rmse": False, "mae": False, "r2": True, "anll": False, "accuracy": True,
                     "error": False, "auroc": True, "pinball": False, "huber": False}


def regression(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    y2 = np.asarray(y, float).reshape(len(y), -1)
    resid = y2 - np.asarray(yhat, float).reshape(len(y), -1)
    ss_tot = float(np.sum((y2 - y2.mean(axis=0)) ** 2))
    ss_res = float(np.sum(resid ** 2))
    return {"rmse": float(np.sqrt(np.mean(resid ** 2))), "mae": float(np.mean(np.abs(resid))),
            "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")}


def auroc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney, ties counted half); NaN with one class."""
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def accuracy(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    acc = float(np.mean(np.asarray(y) == np.asarray(yhat)))
    return {"accuracy": acc, "error": 1.0 - acc}
