"""The report of weights chosen from the data (``fitted.info['selection']``): the lines a
summary shows, and the check a saved model's report must pass when it is loaded.

The report (made by stratlang.backends.selection) holds the method ('reml', 'ml',
'gcv'), the criterion's value at the choice, the outer iterations and inner fits, whether
the search converged, its time in seconds, how log|H| and the traces were computed ('exact-cholesky', 'slq',
…), the scale φ when the loss has one, and per chosen weight its value, its approximate
standard error on the log scale (None when the criterion gives none, e.g. GCV) and
``limit``: None, or 'zero' / 'infinite' for a weight the data cannot determine.
"""

from __future__ import annotations

from typing import Any

from .backends.selection import SELECTION_KEY
from .language import ir
from .language.auto import SELECTION_METHODS

LIMITS = ("zero", "infinite")
_LIMIT_WORDS = {"zero": "ran to 0", "infinite": "ran to ∞"}


def summary_lines(info: dict[str, Any]) -> list[str]:
    """The summary's lines on the chosen weights (none when no weight was chosen)."""
    report = info.get(SELECTION_KEY)
    if not report:
        return []
    said = [f"criterion {report['criterion']:.8g}",
            f"{report['iterations']} outer iterations"
            + (f" in {report['seconds']:.3g} s" if report.get("seconds") is not None else ""),
            f"{report['estimates']} estimates"]
    if report.get("scale") is not None:
        said.append(f"scale φ {report['scale']:.4g}")
    if not report["converged"]:
        said.append("NOT converged")
    lines = [f"weights chosen by {report['method'].upper()} ({', '.join(said)}):"]
    width = max(len(name) for name in report["weights"])
    for name, chosen in report["weights"].items():
        if chosen["limit"] is not None:
            note = (f"{_LIMIT_WORDS[chosen['limit']]}: the data cannot determine it "
                    f"(stopped at {chosen['value']:.4g})")
        elif chosen["log_se"] is not None:
            note = f"{chosen['value']:.4g} (log-scale SE {chosen['log_se']:.3g})"
        else:
            note = f"{chosen['value']:.4g}"
        lines.append(f"  {name.ljust(width)}  {note}")
    return lines


def check_saved(reader: Any, info: dict[str, Any], model: ir.CheckedModel,
                weights: dict[str, float]) -> None:
    """A saved model's report: every field of its kind, every chosen weight an auto weight
    of the model at the value the model was fitted with (``reader`` a saved_schema
    Reader: it names the file and the key of a problem)."""
    report = reader.value(info, SELECTION_KEY, "info", "object", optional=True)
    if report is None:
        return
    at = f"info.{SELECTION_KEY}"
    if reader.value(report, "method", at, "text") not in SELECTION_METHODS:
        reader.fail(f"{at}.method", f"expected one of {', '.join(SELECTION_METHODS)}")
    reader.value(report, "criterion", at, "number")
    reader.value(report, "iterations", at, "count")
    reader.value(report, "inner_fits", at, "count")
    reader.value(report, "converged", at, "flag")
    reader.value(report, "estimates", at, "text")
    reader.value(report, "scale", at, "number", optional=True)
    reader.value(report, "seconds", at, "number", optional=True)
    chosen = reader.value(report, "weights", at, "objects")
    autos = model.autos()
    for name, entry in chosen.items():
        where = f"{at}.weights.{name}"
        if name not in autos:
            reader.fail(where, "not a weight written auto in the spec")
        value = reader.value(entry, "value", where, "number")
        if value != weights.get(name):
            reader.fail(where, f"the value {value!r} is not the weight the model was fitted "
                               f"with ({weights.get(name)!r})")
        reader.value(entry, "log_se", where, "number", optional=True)
        if entry.get("limit") not in (None, *LIMITS):
            reader.fail(f"{where}.limit", f"expected null, {' or '.join(LIMITS)}")
        extra = set(entry) - {"value", "log_se", "limit"}
        if extra:
            reader.fail(where, f"unknown key {sorted(extra)[0]!r}")
