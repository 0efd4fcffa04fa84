"""Scores of predictions: the loss's natural metrics (RMSE, ANLL, accuracy, AUROC), each
weighted by the records' weights when the model has them (a record of weight 2 counts as
two records)."""

from __future__ import annotations

import numpy as np

# metric name → True when larger is better
GREATER_IS_BETTER = {"rmse": False, "mae": False, "r2": True, "anll": False, "accuracy": True,
                     "error": False, "auroc": True, "pinball": False, "huber": False}


def mean(values: np.ndarray, weight: np.ndarray | None = None) -> float:
    """The (weighted) mean over records of per-record values (N,) or (N, m)."""
    values = np.asarray(values, float)
    if weight is None:
        return float(np.mean(values))
    w = weight.reshape(-1, *([1] * (values.ndim - 1)))
    total = float(np.sum(w * np.ones_like(values)))
    return float(np.sum(w * values) / total) if total > 0 else float("nan")


def regression(y: np.ndarray, yhat: np.ndarray, weight: np.ndarray | None = None
               ) -> dict[str, float]:
    y2 = np.asarray(y, float).reshape(len(y), -1)
    resid = y2 - np.asarray(yhat, float).reshape(len(y), -1)
    w = np.ones(len(y2)) if weight is None else weight
    centre = np.sum(w[:, None] * y2, axis=0) / max(float(np.sum(w)), 1e-300)
    ss_tot = float(np.sum(w[:, None] * (y2 - centre) ** 2))
    ss_res = float(np.sum(w[:, None] * resid ** 2))
    return {"rmse": float(np.sqrt(mean(resid ** 2, weight))), "mae": mean(np.abs(resid), weight),
            "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")}


def auroc(positive: np.ndarray, score: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Area under the ROC curve: the (weighted) share of positive–negative pairs the score
    orders right, ties counted half; NaN with one class."""
    positive = np.asarray(positive, bool)
    w = np.ones(len(positive)) if weight is None else np.asarray(weight, float)
    w_pos, w_neg = float(np.sum(w[positive])), float(np.sum(w[~positive]))
    if w_pos == 0 or w_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    s, p, ww = np.asarray(score)[order], positive[order], w[order]
    # per distinct score: negative weight strictly below, and tied negatives at it
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    neg = np.where(~p, ww, 0.0)
    tied_neg = np.add.reduceat(neg, starts)
    below = np.cumsum(tied_neg) - tied_neg
    pos_at = np.add.reduceat(np.where(p, ww, 0.0), starts)
    return float(np.sum(pos_at * (below + 0.5 * tied_neg)) / (w_pos * w_neg))


def accuracy(y: np.ndarray, yhat: np.ndarray, weight: np.ndarray | None = None
             ) -> dict[str, float]:
    acc = mean(np.asarray(y) == np.asarray(yhat), weight)
    return {"accuracy": acc, "error": 1.0 - acc}
