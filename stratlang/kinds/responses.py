"""Response domains: which values a loss accepts, and how they are encoded.

Each function takes the raw response values (N × c object array) and returns the
encoded array, the class labels (for categorical domains) and a list of problems,
each a message plus the offending row positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ResponseProblem:
    """What is wrong with a response column's values: a message and the rows concerned."""

    message: str
    rows: np.ndarray  # positions into the frame


@dataclass(frozen=True)
class Encoded:
    values: np.ndarray  # (N, m) float
    classes: tuple | None


def _numeric(raw: np.ndarray, problems: list[ResponseProblem]) -> np.ndarray:
    out = np.full(raw.shape, np.nan)
    bad = np.zeros(len(raw), bool)
    for j in range(raw.shape[1]):
        try:  # one vectorized cast (float() of each value; None gives NaN, blamed below)
            out[:, j] = raw[:, j].astype(float)
            continue
        except (TypeError, ValueError, OverflowError):
            pass  # some value is no number: find which, one at a time
        for i, v in enumerate(raw[:, j]):
            try:
                out[i, j] = float(v)
            except (TypeError, ValueError, OverflowError):  # (an int past 1e308)
                bad[i] = True
    with np.errstate(invalid="ignore"):
        bad |= ~(np.abs(out) <= 1e150).all(axis=1)  # NaN, ±inf, or squares that overflow
    if bad.any():
        problems.append(ResponseProblem("must hold finite numbers (of magnitude at most 1e+150)",
                                np.flatnonzero(bad)))
    return out


def _labels(raw: np.ndarray) -> list:
    return [v.item() if hasattr(v, "item") else v for v in raw[:, 0]]


def real(raw, classes, problems):
    return Encoded(_numeric(raw, problems), None)


def nonnegative(raw, classes, problems):
    y = _numeric(raw, problems)
    bad = np.flatnonzero(np.nan_to_num(y, nan=0.0).min(axis=1) < 0)
    if len(bad):
        problems.append(ResponseProblem("must be nonnegative", bad))
    return Encoded(y, None)


def count(raw, classes, problems):
    y = _numeric(raw, problems)
    z = np.nan_to_num(y, nan=0.0)
    bad = np.flatnonzero(((z < 0) | (z != np.round(z))).any(axis=1))
    if len(bad):
        problems.append(ResponseProblem("must hold nonnegative integers (counts)", bad))
    return Encoded(y, None)


# outcomes written as text: a CSV column with one odd value stays text, and each row is
# judged on its own (only the odd row is blamed)
_OUTCOME_WORDS = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0}


def zero_one(raw, classes, problems):
    labels = _labels(raw)
    y = np.zeros((len(labels), 1))
    bad = []
    for i, v in enumerate(labels):
        if isinstance(v, str):
            word = _OUTCOME_WORDS.get(v.strip(" \t").lower())
            if word is None:
                bad.append(i)
            else:
                y[i, 0] = word
        elif v is True or v is False or v in (0, 1):
            y[i, 0] = float(v)
        else:
            bad.append(i)
    if bad:
        problems.append(ResponseProblem("must hold 0/1 or true/false outcomes", np.array(bad)))
    return Encoded(y, None)


def _sorted_classes(labels: list) -> tuple:
    uniq = set(labels)
    try:
        return tuple(sorted(uniq))
    except TypeError:
        return tuple(sorted(uniq, key=str))


def _class_index(labels, classes, problems) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes)}
    idx = np.array([lookup.get(v, -1) for v in labels])
    bad = np.flatnonzero(idx < 0)
    if len(bad):
        known = ", ".join(repr(c) for c in classes)
        problems.append(ResponseProblem(f"holds classes not seen in training (known: {known})",
                                        bad))
    return idx


def binary(raw, classes, problems):
    """Two classes, encoded −1 / +1 (the second class in sorted order is +1)."""
    labels = _labels(raw)
    if classes is None:
        classes = _sorted_classes(labels)
        if len(classes) != 2:
            shown = ", ".join(repr(c) for c in classes[:6])
            problems.append(ResponseProblem(f"must have exactly two classes; found {len(classes)} "
                                    f"class{'' if len(classes) == 1 else 'es'}: {shown}",
                                    np.arange(len(labels)) if len(classes) < 2 else
                                    np.array([i for i, v in enumerate(labels)
                                              if v not in classes[:2]])))
            return Encoded(np.zeros((len(labels), 1)), classes[:2])
    idx = _class_index(labels, classes, problems)
    return Encoded(np.where(idx == 1, 1.0, -1.0).reshape(-1, 1), classes)


def categorical(raw, classes, problems):
    """M ≥ 2 classes, one-hot encoded."""
    labels = _labels(raw)
    if classes is None:
        classes = _sorted_classes(labels)
        if len(classes) < 2:
            shown = ", ".join(repr(c) for c in classes)
            problems.append(ResponseProblem(f"must have at least two classes; found {len(classes)} "
                                    f"class{'' if len(classes) == 1 else 'es'}: {shown}",
                                    np.arange(len(labels))))
    idx = _class_index(labels, classes, problems)
    onehot = np.zeros((len(labels), max(len(classes), 1)))
    ok = idx >= 0
    onehot[np.flatnonzero(ok), idx[ok]] = 1.0
    return Encoded(onehot, classes)


DOMAINS = {"real": real, "nonnegative": nonnegative, "count": count, "zero_one": zero_one,
           "binary": binary, "categorical": categorical}
# what each domain accepts, in words (the documentation's losses table)
DOMAIN_TEXT = {"real": "real numbers", "nonnegative": "nonnegative numbers",
               "count": "nonnegative integers (counts)", "zero_one": "0/1 or true/false",
               "binary": "exactly two classes (the later in sorted order is positive)",
               "categorical": "two or more classes"}
