"""Stable diagnostic codes: each kind of problem the parser, the checker and the data
binder report has one code, shown as ``error[S104]`` and carried in ``--format json`` and
in the language server's diagnostics, so that a user (or a CI script) can look a problem
up, and it keeps its code when its wording changes.

A code is S then three digits: S0xx syntax, S1xx an unknown name, S2xx an argument or
value, S3xx how statements fit together, S4xx a file, S5xx the data against the spec.
docs/language.md's table of codes is generated from :data:`CODES` (stratlang/doc_tables.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    code: str
    summary: str  # one line: what kind of problem carries the code


CODES: dict[str, Code] = {}


def _code(code: str, summary: str) -> str:
    assert code not in CODES, f"diagnostic code {code} defined twice"
    CODES[code] = Code(code, summary)
    return code


# ---- syntax ------------------------------------------------------------------------
UNEXPECTED = _code("S001", "unexpected word or symbol: the text does not parse here")
UNEXPECTED_END = _code("S002", "a statement ends (end of line or file) before it is complete")
UNKNOWN_STATEMENT = _code("S003", "a line starts with a word that is no statement keyword")
UNTERMINATED_STRING = _code("S004", "a string lacks its closing double quote")
MALFORMED_NUMBER = _code("S005", "a number that is not written as one (e.g. 1.2.3, 1e)")
FOREIGN_DIGIT = _code("S006", "a digit other than ASCII 0-9 (Arabic-Indic, fullwidth, ...)")
UNEXPECTED_CHARACTER = _code("S007", "a character the language does not use")
BREAK_IN_COMMENT = _code("S008", "a character that editors show as a line break, in a comment")
TEXT_TOO_LARGE = _code("S009", "the spec, a line, a number or bracket nesting beyond the limits")
MALFORMED_ROW_FILTER = _code("S010", "a row filter (--rows) that is not one line of conditions")

# ---- names -------------------------------------------------------------------------
UNKNOWN_OPTION = _code("S101", "unknown option of a statement or backend")
UNKNOWN_ARGUMENT = _code("S102", "unknown keyword argument of a kind")
UNKNOWN_SWEEP = _code("S103", "unknown sweep function (logspace and linspace are)")
UNKNOWN_LOSS = _code("S104", "unknown loss")
UNKNOWN_REGULARIZER = _code("S105", "unknown regularizer")
UNKNOWN_GRAPH = _code("S106", "unknown graph kind")
UNKNOWN_DISTANCE = _code("S107", "unknown distance")
UNKNOWN_TRANSFORM = _code("S108", "unknown transform")
UNKNOWN_BACKEND = _code("S109", "unknown backend")
UNKNOWN_MISSING_POLICY = _code("S110", "unknown missing-value policy")
NOT_A_STRATUM_COLUMN = _code("S111", "a where condition on a column that is not stratified")
NOT_A_PARAMETER_ROW = _code("S112", "exclude names a row that is not a parameter of the model")
NOT_A_FACTOR = _code("S113", "a feature's `by` or an `interact` names a column that is not stratified")
UNKNOWN_SELECTION = _code("S130", "unknown method of choosing auto weights (select reml, ml, gcv)")

# one code per registry, by the registry's word for its entries (Registry.what)
UNKNOWN_KIND = {"loss": UNKNOWN_LOSS, "regularizer": UNKNOWN_REGULARIZER,
                "graph": UNKNOWN_GRAPH, "distance": UNKNOWN_DISTANCE,
                "transform": UNKNOWN_TRANSFORM, "backend": UNKNOWN_BACKEND}

# ---- arguments and values ----------------------------------------------------------
TOO_MANY_ARGUMENTS = _code("S201", "more positional arguments than the kind has parameters")
ARGUMENT_TWICE = _code("S202", "an argument given twice")
OPTION_TWICE = _code("S203", "an option given twice")
MISSING_ARGUMENT = _code("S204", "a required argument or option left out")
INVALID_VALUE = _code("S205", "an argument or option value outside what its parameter allows")
NEGATIVE_WEIGHT = _code("S206", "a negative regularization or graph weight")
MALFORMED_SWEEP = _code("S207",
                        "a sweep that is not a number set or logspace/linspace(low, high, count)")
MALFORMED_NODES = _code("S208", "a node range or list (nodes, exclude) that is malformed")
TOO_LARGE = _code("S209", "a model beyond the limits: nodes, strata, basis, edges or memory")
NOT_A_LABEL = _code("S210", "a condition compares with something that is no node label")
AUTO_NOT_QUADRATIC = _code("S230", "an auto weight on a term that is not a quadratic penalty")

# ---- statements --------------------------------------------------------------------
DUPLICATE_STATEMENT = _code("S301", "a statement that may appear once appears twice")
MISSING_RESPONSE = _code("S302", "no response statement")
COLUMN_TWICE = _code("S303", "a column or feature used twice where once is allowed")
ONE_COLUMN_ONLY = _code("S304", "a loss, graph or distance that takes one column given several")
MALFORMED_FEATURE = _code("S305", "a feature that is not a column, a transform of one or a product")
NOT_ACCEPTED = _code("S306",
                     "a loss or regularizer given what it does not take (features, offset, weight)")
MALFORMED_OVERRIDE = _code("S307",
                           "a response override (response ... where) changing more than parameters")
MISPLACED_WHERE = _code("S308",
                        "a where clause in a model without strata, or on a basis model's feature")
MISPLACED_BASIS = _code("S309", "a basis statement in a model without a graph")
MIXED_MODEL = _code("S310",
                    "stratified and personalized parts mixed, or a personalized model lacking one")
BACKEND_CANNOT_FIT = _code("S311", "a backend chosen for a model it cannot fit")
MISPLACED_VARIATION = _code("S312", "`by`, `shared` or `interact` in a model without strata, "
                                    "personalized, or with a basis")
AUTO_NO_LIKELIHOOD = _code("S330", "auto weights with a loss that has no likelihood reading")
SELECT_WITHOUT_AUTO = _code("S331", "select (how auto weights are chosen) in a model with none")
AUTO_PERSONALIZED = _code("S332", "an auto weight in a personalized model")
AUTO_ACTS_ON_NOTHING = _code("S334", "an auto weight whose penalty acts on no free "
                                    "coefficient")
GCV_WITHOUT_DEVIANCE = _code("S335", "select gcv with a loss that has no deviance")
# S333 (auto beside a term constant along a factor, or with `where`) is retired: supported

# ---- files -------------------------------------------------------------------------
DATA_FILE = _code("S401", "the data file is missing or cannot be read")
GRAPH_FILE = _code("S402", "a graph file is missing or cannot be read")

# ---- data against the spec ---------------------------------------------------------
NO_COLUMN = _code("S501", "a column the spec names is not in the data")
MISSING_VALUES = _code("S502", "a column has missing values (and the policy is missing error)")
NOT_NUMERIC = _code("S503", "a column that must hold numbers holds something else")
NOT_FINITE = _code("S504", "a column holds infinite or huge values")
BAD_RESPONSE = _code("S505", "response values outside what the loss takes")
BAD_WEIGHTS = _code("S506", "a weights column that is negative or zero everywhere")
NO_RECORDS = _code("S507", "no records left to fit")
NOT_A_NODE = _code("S508", "values or where conditions that name no node of the graph")
OVERLAPPING_OVERRIDES = _code("S509", "two response overrides select the same stratum")
TRANSFORM_FAILED = _code("S510", "a transform that cannot be applied to the column's values")
GRAPH_FAILED = _code("S511", "a graph or distance that cannot be built from its file or the data")
ZERO_REFUSED = _code("S512", "a constraint holding at 0 parameters the loss cannot take at 0")


def codes_table() -> str:
    """docs/language.md's table of codes (a Markdown table, one row a code)."""
    lines = ["| code | problem |", "|---|---|"]
    lines += [f"| `{c.code}` | {c.summary} |" for c in CODES.values()]
    return "\n".join(lines) + "\n"
