"""``stratlang`` command line: check, show, fit, verify, tune, predict, score, plot, fmt,
lsp (the parser's description lists :data:`COMMANDS`).

Exit status: 0 on success, 1 on a user error (bad spec, bad data, numerical failure),
2 on a usage error. A user never sees a Python traceback (``--debug`` shows one).
A SPEC of ``-`` is read from standard input (its files are looked for in the working
directory). With ``--format json`` a command prints exactly one JSON document on
standard output, a failure included: ``{"ok": false, "errors": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .interrupts import INTERRUPTED_STATUS, run_supervised
from .language.auto import SELECTION_METHODS
from .language.errors import STDIN, DataError, OptionError, SpecError, StratlangError
from .language.policies import UNSEEN_POLICIES

if TYPE_CHECKING:  # imported when a command needs them: `stratlang --help` stays quick
    from .fitted import FittedModel
    from .language.ir import Hyper
    from .model import Model


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stratlang", description="stratlang command line: "
                                     + ", ".join(COMMANDS))
    parser.add_argument("--version", action="version", version=f"stratlang {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="check a spec (and its data) and report every problem")
    _spec_argument(p)
    p.add_argument("--data", help="CSV file to check the spec against")
    p.add_argument("--graph", action="append", default=[], metavar="COLUMN=FILE",
                   type=_graph_item, help=GRAPH_HELP)

    p = sub.add_parser("show", help="print the canonical spec and a summary of the model")
    _spec_argument(p)
    p.add_argument("--data", help="CSV file (for the strata observed in it)")
    p.add_argument("--graph", action="append", default=[], metavar="COLUMN=FILE",
                   type=_graph_item, help=GRAPH_HELP)

    p = sub.add_parser("fit", help="fit a spec to data")
    _spec_argument(p)
    p.add_argument("--data", help="CSV file (default: the spec's data statement)")
    _rows_argument(p)
    p.add_argument("--backend", help=BACKEND_HELP)
    p.add_argument("--solver", help="CVXPY solver for the cvxpy backend (clarabel, scs, ...)")
    p.add_argument("--scheduler", help="dask backend: scheduler address (default: a LocalCluster)")
    p.add_argument("--workers", type=int, help="dask backend: LocalCluster worker processes")
    p.add_argument("--output", metavar="DIR", help="dask backend: the workers write θ under DIR "
                   "as Parquet parts (plus DIR/model.json, for predict and score)")
    p.add_argument("--weight", action="append", default=[], metavar="NAME=VALUE",
                   type=_weight_item,
                   help="fix a hyper-parameter, e.g. stratify.age=100 (repeatable)")
    p.add_argument("--select", choices=SELECTION_METHODS,
                   help="how the weights written auto are chosen (default: the spec's "
                        "select, else reml)")
    _option_argument(p)
    p.add_argument("--graph", action="append", default=[], metavar="COLUMN=FILE",
                   type=_graph_item, help=GRAPH_HELP)
    p.add_argument("--out", help="write the fitted model here (JSON + .npz beside it)")
    p.add_argument("--standard-errors", action="store_true",
                   help="compute the standard errors however large the fit (done unasked up "
                        "to 3,000 parameters), to print and save them")

    p = sub.add_parser("verify", help="fit with the CVXPY reference and with the fast backend; "
                       "compare")
    _spec_argument(p)
    p.add_argument("--data", help="CSV file (default: the spec's data statement)")
    _rows_argument(p)
    p.add_argument("--solver", help="CVXPY solver for the reference")
    p.add_argument("--weight", action="append", default=[], metavar="NAME=VALUE",
                   type=_weight_item, help="fix a hyper-parameter (repeatable)")
    _option_argument(p, "the fast backend's option")
    p.add_argument("--graph", action="append", default=[], metavar="COLUMN=FILE",
                   type=_graph_item, help=GRAPH_HELP)

    p = sub.add_parser("tune", help="cross-validate the spec's sweeps and refit the best")
    _spec_argument(p)
    p.add_argument("--data", help="CSV file (default: the spec's data statement)")
    _rows_argument(p)
    p.add_argument("--folds", type=_folds, default=5, help="cross-validation folds (≥ 2, "
                   "default 5)")
    p.add_argument("--metric", help="metric to optimize (default: the loss's own)")
    p.add_argument("--backend", help=BACKEND_HELP)
    p.add_argument("--graph", action="append", default=[], metavar="COLUMN=FILE",
                   type=_graph_item, help=GRAPH_HELP)
    p.add_argument("--out", help="write the refitted best model here")

    p = sub.add_parser("plot", help="draw a fitted model (PNG, SVG or PDF)")
    p.add_argument("model", help="a fitted model written by `stratlang fit --out`")
    p.add_argument("--param", help="the parameter (row[:output]) to show; default: the "
                   "first row that is not the intercept")
    p.add_argument("--over", help="stratification column along the x axis")
    p.add_argument("--by", help="column for separate lines, heat-map rows, or the colour")
    p.add_argument("--scale", choices=("link", "response"), default=None,
                   help="link: θ itself (the default); response: the loss's prediction or "
                   "probability at the intercept alone (e.g. exp(θ) for poisson_regression)")
    p.add_argument("--convergence", action="store_true", help="plot the iteration history")
    p.add_argument("--embedding", choices=("pca", "tsne"), default=None,
                   help="map of a personalized model's sample models (default: pca)")
    p.add_argument("--out", required=True, help="FILE.png, FILE.svg or FILE.pdf")

    for name, text in (("predict", "predict with a fitted model"),
                       ("score", "score a fitted model on data")):
        p = sub.add_parser(name, help=text)
        p.add_argument("model", help="a fitted model written by `stratlang fit --out` (or "
                       "the directory of `--output`)")
        p.add_argument("--data", required=True, help="CSV file")
        if name == "score":
            _rows_argument(p)
        p.add_argument("--unseen", choices=UNSEEN_POLICIES, default="error",
                       help="a stratum value the fit has not seen: an error (default), the "
                            "model averaged over its factor's nodes, or its star's hub")
        if name == "predict":
            p.add_argument("--out", help="CSV file for the predictions (default: stdout)")
            p.add_argument("--interval", type=_level, default=None, metavar="LEVEL",
                           help="add each numeric prediction's interval at LEVEL (e.g. "
                                "0.95) as <column>_lower and <column>_upper columns (a "
                                "fit whose loss is a likelihood, quadratic penalties)")
            p.add_argument("--conditional", action="store_true",
                           help="with --interval: leave out the uncertainty of weights chosen "
                                "by auto (as if they had been fixed at their chosen values)")
            p.add_argument("--id", action="append", default=[], metavar="COLUMN",
                           help="a column of the data to carry into the predictions, e.g. a "
                                "record id (repeatable); the stratification columns always are")
    p = sub.add_parser("fmt", help="rewrite a spec in the canonical layout, comments kept")
    p.add_argument("spec", metavar="SPEC", help="a .strat file (rewritten in place), or - to "
                   "read standard input and write the layout to standard output")
    p.add_argument("--check", action="store_true", help="change nothing: exit 1 when the file "
                   "is not in the canonical layout (for CI)")

    p = sub.add_parser("lsp", help="run the language server for editors (on stdin/stdout)")

    for name, p in sub.choices.items():
        p.add_argument("--format", choices=("text", "json"), default="text",
                       help="json: one JSON document on standard output, errors included")
        p.description = HELP[name]
        p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[name])
        p.formatter_class = _HelpFormatter
    return parser


BACKEND_HELP = "fitting backend: %(backends)s"


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Fills ``%(backends)s`` from the backend registry when help is printed (importing
    the registry at every start would slow each command), so that the list cannot go
    stale."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text is None or "%(backends)s" not in text:
            return text
        from .backends import BACKENDS, automatic

        defaults = []
        for family in dict.fromkeys(b.family for b in BACKENDS.entries()):
            tried = [b.name for b in automatic(family)]
            first = tried[0] if len(tried) == 1 else f"the first of {', '.join(tried)} that fits"
            defaults.append(f"{first} for a {family} model")
        return text.replace("%(backends)s", f"{', '.join(BACKENDS.names())} (default: "
                                            f"{'; '.join(defaults)})")


HELP = {
    "check": "Checks a spec and, when it names data (or --data is given), binds the data: "
             "every problem is reported at once, with its file, line and column.",
    "show": "Prints the spec's canonical text and what it declares; with data, the records, "
            "the parameter rows, K and each factor's graph.",
    "fit": "Fits a spec to its data and prints the summary and the training metrics; --out "
           "writes the fit (JSON and .npz) for predict, score and plot.",
    "verify": "Fits the same model with the CVXPY reference and with the fast backend, and "
              "compares their objectives and times.",
    "tune": "Cross-validates every combination of the spec's sweeps (e.g. weight {1, 10, "
            "100}) and refits the best on all data.",
    "plot": "Draws a fitted model: a parameter over the strata, the iteration history, or "
            "a personalized model's sample models.",
    "predict": "Predicts every row of a data file with a fitted model; the rows' "
               "stratification columns (and --id columns) come first.",
    "score": "Scores a fitted model on a data file: the loss's metrics.",
    "fmt": "Rewrites a spec in the canonical layout (the one `show` prints) with its comments "
           "kept; --check only says whether it would change (exit 1), for CI.",
    "lsp": "Runs the language server (LSP, over standard input and output) that editors start: "
           "diagnostics, hover, completion, formatting and go-to-file for .strat files.",
}
EXAMPLES = {
    "check": ["stratlang check model.strat", "stratlang check model.strat --data new.csv",
              "cat model.strat | stratlang check -"],
    "show": ["stratlang show model.strat --data train.csv"],
    "fit": ["stratlang fit model.strat --data train.csv --out fit",
            "stratlang fit model.strat --weight stratify.age=100 --option max_iter=20000",
            "stratlang fit model.strat --backend dask --workers 4 --output parts/"],
    "verify": ["stratlang verify model.strat --weight stratify.age=100"],
    "tune": ["stratlang tune model.strat --folds 5 --out best"],
    "plot": ["stratlang plot fit.json --out year.png",
             "stratlang plot fit.json --over state --by year --out map.png",
             "stratlang plot fit.json --convergence --out conv.png"],
    "predict": ["stratlang predict fit.json --data new.csv --id record --out predictions.csv",
                "stratlang predict fit.json --data new.csv --unseen common"],
    "score": ["stratlang score fit.json --data test.csv"],
    "fmt": ["stratlang fmt model.strat", "stratlang fmt --check model.strat",
            "stratlang fmt - < model.strat"],
    "lsp": ["stratlang lsp   (started by the editor: see editors/vscode)"],
}


def _rows_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", metavar="FILTER",
                   help="use only the rows where FILTER holds, written like a where clause: "
                        "'split == \"train\"', 'year != 2016 and state in {CA, NY}'")


def _data(args: argparse.Namespace, model: Model) -> Any:
    """--data (None: the spec's data statement), filtered by --rows when given."""
    if getattr(args, "rows", None) is None:
        return args.data
    from .backends.dask import is_partitioned_path
    from .data.row_filter import filter_rows

    if isinstance(args.data, str) and is_partitioned_path(args.data):
        raise StratlangError("--rows filters a CSV file's rows; partitioned data stay on the "
                             "workers: filter them before fitting")
    return filter_rows(model.frame(args.data), args.rows)


def _option_argument(p: argparse.ArgumentParser, what: str = "a backend option") -> None:
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   type=_option_item,
                   help=f"{what}, e.g. max_iter=20000 or penalty=0.5 (repeatable; validated by "
                        "the backend; see docs/language.md for each backend's options)")


def _spec_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC",
                   help="a .strat file, or - to read the spec from standard input")


GRAPH_HELP = ("the edge-list CSV (source,target[,weight]) of a factor the spec declares "
              "'given', e.g. state=borders.csv (repeatable)")


def _pair(item: str, what: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expects {what}, got '{item}'")
    return name.strip(), value.strip()


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a probability strictly between "
                                         "0 and 1, e.g. 0.95")
    return value


def _folds(text: str) -> int:
    try:
        folds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a whole number, got '{text}'") from None
    if folds < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2, got {folds}")
    return folds


def _graph_item(item: str) -> tuple[str, str]:
    """--graph COLUMN=FILE (a malformed one is a usage error: exit 2)."""
    return _pair(item, "COLUMN=FILE")


def _weight_item(item: str) -> tuple[str, float]:
    """--weight NAME=VALUE with a number for VALUE (else a usage error: exit 2)."""
    name, value = _pair(item, "NAME=VALUE")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects NAME=VALUE with a number for VALUE, got "
                                         f"'{item}'") from None


def _option_item(item: str) -> tuple[str, Any]:
    """--option NAME=VALUE: VALUE read as JSON when it is (a number, true/false, null),
    else as text; the backend validates it as it does options given from Python."""
    name, value = _pair(item, "NAME=VALUE")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _graphs(items: list[tuple[str, str]]) -> dict[str, str]:
    return dict(items)


def _weights(items: list[tuple[str, float]]) -> dict[str, float]:
    return dict(items)


# ---- the spec argument -------------------------------------------------------------------
def _load(args: argparse.Namespace) -> Model:
    """The model of the SPEC argument (a file, or '-': standard input), with the graphs
    of --graph."""
    from .model import Model
    from .spec import compile_spec

    return _with_graphs(Model(compile_spec(*_spec_text(args))), _graphs(args.graph))


def _spec_text(args: argparse.Namespace) -> tuple[str, str]:
    """(text, file name) of the SPEC argument: a file, or '-': standard input."""
    from .spec import read_spec

    if args.spec == "-":
        return _read_stdin(), STDIN
    return read_spec(Path(args.spec))


def _spec_name(args: argparse.Namespace) -> str:
    return STDIN if args.spec == "-" else args.spec


def _read_stdin(what: str = "the spec", limit: int | None = None) -> str:
    """Standard input's text, decoded as a file is (UTF-8, line ends kept), at most
    ``limit`` bytes (default: a spec's)."""
    from .language.limits import MAX_SPEC_BYTES, file_too_large
    from .language.reading import FileProblem, decode

    limit = MAX_SPEC_BYTES if limit is None else limit
    if sys.stdin is None:  # closed (e.g. `<&-`)
        raise StratlangError(f"no standard input to read {what} from ('-')")
    binary = getattr(sys.stdin, "buffer", None)
    if binary is None:  # a text stream only (e.g. one put in place by a test harness)
        return sys.stdin.read()
    data = binary.read(limit + 1)  # bounded: `< /dev/zero` never ends
    if len(data) > limit:
        raise StratlangError(file_too_large(f"{what} on standard input", None, limit))
    try:
        return decode(data, f"{what} on standard input")
    except FileProblem as err:
        raise StratlangError(str(err)) from None


def _stdin_data(args: argparse.Namespace) -> None:
    """``--data -``: the CSV table on standard input, checked as a data file is, in place
    of the path."""
    if getattr(args, "data", None) != "-":
        return
    from .kinds.files import csv_table
    from .language.limits import MAX_FILE_BYTES
    from .language.reading import FileProblem

    if getattr(args, "spec", None) == "-":
        raise StratlangError("SPEC and --data cannot both be '-': standard input holds one")
    name = "the data on standard input"
    try:
        frame = csv_table(_read_stdin("the data", MAX_FILE_BYTES), name, skipinitialspace=True)
    except FileProblem as err:
        raise DataError(str(err)) from None
    frame.attrs["source"] = frame.attrs["file"] = STDIN
    args.data = frame


def _with_graphs(model: Model, graphs: dict[str, str]) -> Model:
    """``model`` with the --graph files; a column the spec does not take a graph for is
    refused naming the flag (the model's command-line wording, with the file)."""
    for column, path in graphs.items():
        try:
            model = model.with_graphs({column: path})
        except OptionError as err:
            raise OptionError(err.for_cli().replace("…", str(path), 1)) from None
    return model


# ---- JSON output -------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it: numpy numbers as Python's, a non-finite float or a
    missing value as None (JSON has no NaN), paths and other objects as text."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    import pandas as pd

    return None if pd.api.types.is_scalar(value) and pd.isna(value) else str(value)  # NA, NaT


def _emit(document: dict) -> None:
    """The one JSON document of a command run with --format json."""
    print(json.dumps(_plain(document), indent=1, allow_nan=False))


def _json(args: argparse.Namespace) -> bool:
    return getattr(args, "format", "text") == "json"


def _hyper(h: Hyper) -> float | list[float] | str:
    """A weight as written in the spec: a number, a sweep's values, or "auto"."""
    if h.is_auto:
        return "auto"
    return list(h.values) if h.is_sweep else h.value


def _saved(fitted: FittedModel, out: str) -> tuple[dict, str]:
    """Writes the fitted model; (its paths for JSON, the line text mode prints)."""
    path = fitted.save(out)
    arrays = path.with_suffix(".npz")
    return {"model": str(path), "arrays": str(arrays)}, f"saved {path} and {arrays}"


# ---- commands ----------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    from .backends.base import bind_family

    model = _load(args)
    if args.data is not None or model.ir.data:
        bind_family(model.ir, args.data, model.graphs)
    if _json(args):
        _emit({"ok": True, "errors": []})
    else:
        print(f"{_spec_name(args)}: ok ({model.ir.kind} model '{model.name}')")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from .backends.relaxation import nonconvex_parts
    from .data.features import factor_text
    from .data.structure_notes import interaction_notes, variation_notes
    from .kinds.losses import LOSSES
    from .language.printer import call as call_text
    from .language.printer import where_text

    model = _load(args)
    ir = model.ir
    loss = LOSSES[ir.response.loss.name]
    doc: dict[str, Any] = {
        "ok": True, "model": model.name, "kind": ir.kind, "loss": loss.name, "text": model.text,
        "personalized": ({"rank": ir.personalize.rank,
                          "distances": len(ir.personalize.distances)}
                         if ir.personalize is not None else None),
        "offset": factor_text(ir.response.offset) if ir.response.offset is not None else None,
        "weights_column": ir.weights, "records": None, "rows": None, "strata": None,
        "loss_overrides": [call_text(o.loss, LOSSES) + where_text(o.where)
                           for o in ir.response.overrides],
        "nonconvex": list(nonconvex_parts(ir)),
        "variation": variation_notes(ir), "interactions": interaction_notes(ir),
        "warnings": []}
    if args.data is not None or ir.data:
        _show_data(model, args.data, doc)
    if _json(args):
        _emit(doc)
    else:
        _print_show(doc, loss.doc)
    return 0


def _show_data(model: Model, data: str | None, doc: dict) -> None:
    """What the data add to ``show``: records, parameter rows, strata and factors."""
    from .backends.base import bind_family
    from .data.design import Design
    from .data.structure_notes import factor_islands, interaction_null_dimensions
    from .kinds.losses import LOSSES

    ir = model.ir
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        design = bind_family(ir, model.frame(data), model.graphs)
    doc["warnings"] = [str(w.message) for w in caught]
    doc["records"] = design.n_records
    doc["rows"] = list(design.rows or LOSSES[ir.response.loss.name].row_names(
        (), ir.response.columns))
    if ir.personalize is not None:
        return
    assert isinstance(design, Design)  # (a stratified model's)
    strata = design.strata
    absent = sum(len(k) * len(rows) for k, rows in design.absent())  # features with where
    doc["strata"] = {
        "K": strata.k, "parameters_per_output": strata.k * len(design.rows) - absent,
        "factors": [{"columns": list(f.columns), "structure": f.graph.structure, "nodes": f.n,
                     "edges": f.graph.n_edges, "weight": _hyper(f.weight),
                     "hyper_parameter": f.hyper_name,
                     "hub": f.column_labels[0][f.hub] if f.hub is not None else None,
                     **factor_islands(f, design.node_codes(), axis)}
                    for axis, f in enumerate(strata.factors)],
        "interaction_null_dimensions": interaction_null_dimensions(ir, strata.factors)}


def _print_show(doc: dict, loss_doc: str) -> None:
    print(doc["text"], end="")
    print(f"# {doc['kind']} model, loss {doc['loss']}: {loss_doc}")
    if doc["personalized"] is not None:
        print(f"# personalized: rank {doc['personalized']['rank']}, "
              f"{doc['personalized']['distances']} covariate distance(s)")
    if doc["offset"] is not None:
        print(f"# offset: {doc['offset']} is added to the linear predictor")
    if doc["weights_column"] is not None:
        print(f"# weights: column '{doc['weights_column']}' multiplies each record's loss")
    for override in doc["loss_overrides"]:
        print(f"# loss parameters in some strata: {override}")
    for note in doc["variation"] + doc["interactions"]:
        print(f"# {note}")
    if doc["nonconvex"]:
        print(f"# non-convex ({', '.join(doc['nonconvex'])}): fitted by ADMM as a local "
              "method, from its convex relaxation's fit")
    if doc["records"] is None:
        print("# strata and parameter rows: known once data is given (--data)")
        return
    for warning in doc["warnings"]:
        print(f"# {warning}")
    print(f"# {doc['records']} records; parameter rows {', '.join(doc['rows'])}")
    strata = doc["strata"]
    if strata is None:
        return
    print(f"# strata K = {strata['K']}; {strata['parameters_per_output']} parameters per output")
    for f in strata["factors"]:
        print(f"#   factor ({', '.join(f['columns'])}): {f['structure']} graph, {f['nodes']} "
              f"nodes, {f['edges']} edges" + (f", hub {f['hub']!r}" if f["hub"] is not None
                                                else ""))
        _print_islands(f)
    for note, dim in zip(doc["interactions"], strata["interaction_null_dimensions"],
                         strict=True):
        print(f"#   {note.split(' (', 1)[0]}: null space of dimension {dim} over its factors' "
              "nodes")


def _print_islands(factor: dict) -> None:
    """A factor's islands (connected components, when more than one) and data-free nodes."""
    if factor["components"] > 1:
        print(f"#     {factor['components']} connected components (islands): "
              + "; ".join("{" + ", ".join(map(str, i)) + "}" for i in factor["islands"]))
    if factor["data_free_count"]:
        more = factor["data_free_count"] - len(factor["data_free"])
        print(f"#     {factor['data_free_count']} data-free node(s): "
              + ", ".join(map(str, factor["data_free"])) + (f" … {more} more" if more else ""))


def _cluster_options(args: argparse.Namespace) -> dict:
    """The cluster flags as backend options; a backend that does not declare them gets a
    message naming the flags."""
    from .backends import BACKENDS

    options = {k: v for k, v in (("scheduler", args.scheduler), ("workers", args.workers),
                                 ("output", args.output)) if v is not None}
    given = dict(args.option)
    if options:
        able = [b.name for b in BACKENDS.entries() if all(k in b.options for k in options)]
        if args.backend not in able:
            flags = ", ".join(f"--{k}" for k in options)
            raise StratlangError(f"{flags} appl{'y' if len(options) > 1 else 'ies'} to "
                                 + " and ".join(f"--backend {b}" for b in able))
    return {**given, **options}


def _fit_document(fitted: FittedModel) -> dict:
    """A fit as JSON: what its summary says (model, backend, status, iterations, time,
    objective parts, the weights) and, by kind, its strata or its personalized shape."""
    from .fitted import FittedPersonalized, FittedStratified
    from .selection_report import SELECTION_KEY

    info = fitted.info
    options = info.get("options") or {}
    doc = {"model": fitted.name, "kind": fitted.kind, "loss": fitted.loss.name,
           "records": info.get("records"), "backend": info.get("backend"),
           "solver": info.get("solver"), "status": info.get("status"),
           "iterations": info.get("iterations", info.get("epochs")),
           "iteration_limit": options.get("max_iter") or options.get("max_iters"),
           "seconds": info.get("fit_seconds"), "note": info.get("backend_note"),
           "local": info.get("note") if info.get("local") else None,
           "objective": {"total": fitted.objective.total, **fitted.objective.as_dict()},
           "weights": fitted.weights, "selection": info.get(SELECTION_KEY)}
    if isinstance(fitted, FittedStratified):
        doc["strata"] = {"K": fitted.strata.k, "rows": list(fitted.rows),
                         "outputs": [str(o) for o in fitted.outputs],
                         "parameters": fitted.n_parameters,
                         "factors": [{"columns": list(f.columns), "structure": f.graph.structure,
                                      "nodes": f.n, "edges": f.graph.n_edges,
                                      "weight": fitted.weights[f.hyper_name]}
                                     for f in fitted.strata.factors]}
        doc["uncertainty"] = uncertainty_document(fitted)
    else:
        assert isinstance(fitted, FittedPersonalized)  # (the other kind of fit)
        spec = fitted.ir.personalize
        assert spec is not None  # (the model of a personalized fit)
        doc["iteration_limit"] = doc["iteration_limit"] or getattr(spec, "max_iter", None)
        doc["personalized"] = {"rank": spec.rank,
                               "samples": len(fitted.theta_array),
                               "parameters": int(fitted.theta_array.shape[1]),
                               "epochs": info.get("epochs"), "best_epoch": info.get("best_epoch"),
                               "phi": fitted.phi.to_dict()}
    return doc


def uncertainty_document(fitted: Any) -> dict:
    """The fit's uncertainty as JSON: method, dispersion, edf per term, deviance
    explained, AIC, and each parameter's standard error over the strata (mean, min, max);
    or why it has none."""
    from .uncertainty import saved

    uncertainty = fitted._uncertainty_or_none()
    doc, _ = saved(uncertainty, fitted._refused or fitted._unasked())
    if uncertainty is not None:
        se = fitted.theta_se
        doc["standard_errors"] = {_column_name(c): {"mean": float(se[c].mean()),
                                                    "min": float(se[c].min()),
                                                    "max": float(se[c].max())}
                                  for c in se.columns}
    return doc


def _column_name(column: Any) -> str:
    """θ's column as text: 'x', or 'x:output' when there are several outputs."""
    return ":".join(map(str, column)) if isinstance(column, tuple) else str(column)


def _check_places(out: str | None, output: str | None = None) -> None:
    """Refuses, before the fit, places the fit could not write to (--out, --output)."""
    from .outputs import output_folder_problem, saved_model_problem

    problem = ((saved_model_problem(out) if out else None)
               or (output_folder_problem(output) if output else None))
    if problem:
        raise StratlangError(problem)


def cmd_fit(args: argparse.Namespace) -> int:
    from .backends.dask import is_partitioned_path
    from .fitted import FittedStratified

    _check_places(args.out, args.output)
    model = _load(args)
    options = _cluster_options(args)
    data = _data(args, model)
    fitted = model.fit(data, backend=args.backend, solver=args.solver,
                       weights=_weights(args.weight) or None, options=options or None,
                       select=args.select)
    if args.standard_errors:
        if not isinstance(fitted, FittedStratified):
            raise StratlangError("--standard-errors applies to stratified models")
        _ = fitted.uncertainty  # (a fit without a posterior reading: its reason, exit 1)
    as_json = _json(args)
    doc = {"ok": True, **_fit_document(fitted), "training": None, "output": args.output,
           "saved": None}
    if not as_json:
        print(fitted.summary())
    if not isinstance(args.data, str) or not is_partitioned_path(args.data):  # scoring partitioned data
        # would bring every record to this machine
        doc["training"] = fitted.score(data)
        if not as_json:
            print("  training " + ", ".join(f"{k} {v:.4g}" for k, v in doc["training"].items()))
    if args.output and not as_json:
        print(f"  θ written under {args.output} (read back with `stratlang predict {args.output}`)")
    if args.out:
        doc["saved"], line = _saved(fitted, args.out)
        if not as_json:
            print("  " + line)
    if as_json:
        _emit(doc)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    model = _load(args)
    result = model.verify(_data(args, model), weights=_weights(args.weight) or None,
                                solver=args.solver, options=dict(args.option) or None)
    if _json(args):
        _emit({"ok": True,
               "reference": {"backend": "cvxpy", "objective": result.cvxpy_objective,
                             "seconds": result.cvxpy_seconds,
                             "accuracy": result.reference_accuracy},
               "fast": {"backend": result.fast_backend, "objective": result.fast_objective,
                        "seconds": result.fast_seconds, "iterations": result.fast_iterations,
                        "objective_accuracy": result.fast_accuracy},
               "relative_gap": result.relative_gap, "speedup": result.speedup,
               "pace": result.pace, "relaxation": result.relaxation,
               "bound": result.bound, "relaxation_at_fast": result.relaxed_at_fast})
    else:
        print(result)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    _check_places(args.out)
    model = _load(args)
    result = model.tune(_data(args, model), folds=args.folds, metric=args.metric,
                              backend=args.backend)
    saved, line = _saved(result.fitted, args.out) if args.out else (None, None)
    if _json(args):
        _emit({"ok": True, "metric": result.metric,
               "table": result.table.to_dict(orient="records"), "best": result.best,
               "at_edge": result.at_edge,
               "refit": _fit_document(result.fitted), "saved": saved})
    else:
        print(result)
        if line:
            print(line)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .fitted import load_fitted

    fitted = load_fitted(args.model)
    if args.convergence:
        fitted.plot_convergence(args.out)
    else:  # each kind of fit takes the options that apply to it
        view = {"param": args.param, "over": args.over, "by": args.by, "method": args.embedding,
                "scale": args.scale}
        fitted.plot(out=args.out, **{k: v for k, v in view.items() if v is not None})
    if _json(args):
        _emit({"ok": True, "written": args.out})
    else:
        print(f"wrote {args.out}")
    return 0


def _unseen(fitted: FittedModel, args: argparse.Namespace) -> dict:
    """--unseen, for the fits that have strata (a personalized model has none to miss)."""
    if fitted.kind != "stratified":
        if args.unseen != "error":
            raise StratlangError("--unseen applies to stratified models")
        return {}
    return {"unseen": args.unseen}


def cmd_predict(args: argparse.Namespace) -> int:
    from .fitted import load_fitted

    fitted = load_fitted(args.model)
    frame = fitted.frame(args.data)
    interval = {} if args.interval is None else {"interval": args.interval,
                                                 "conditional": args.conditional}
    predictions = _with_keys(fitted, frame, fitted.predict(frame, **_unseen(fitted, args),
                                                           **interval), args.id)
    if args.out:
        from .outputs import replaced_whole

        with replaced_whole(args.out) as scratch:
            predictions.to_csv(scratch)
        if _json(args):
            _emit({"ok": True, "written": args.out, "rows": len(predictions)})
        else:
            print(f"wrote {len(predictions)} predictions to {args.out}")
    elif _json(args):
        records = predictions.to_dict(orient="records")
        _emit({"ok": True, "predictions": [{"row": label, **record} for label, record
                                           in zip(predictions.index, records, strict=True)]})
    else:
        predictions.to_csv(sys.stdout)
    return 0


def _replace_file(path: Path, text: str) -> None:
    """Rewrites a spec whole: a failed write (a full disk) leaves it as it was."""
    from .outputs import replaced_whole

    with replaced_whole(path) as scratch:
        scratch.write_text(text, encoding="utf-8", newline="")


def _with_keys(fitted: FittedModel, frame: Any, predictions: Any, ids: list[str]) -> Any:
    """The predictions after the columns that say which record each is: the ``--id``
    columns and the stratification columns, read from the same rows."""
    import pandas as pd

    from .language.errors import DataError, did_you_mean

    strata = [c for s in fitted.ir.strata for c in s.columns]
    keys = list(dict.fromkeys([*ids, *strata]))
    for column in ids:
        if column not in frame.columns:
            raise DataError(f"--id {column}: the data have no column '{column}'"
                            + did_you_mean(column, [str(c) for c in frame.columns]))
    for column in ids:
        if column in predictions.columns:
            raise DataError(f"--id {column}: the predictions have a column of that name; "
                            "rename the data's column to carry it")
    taken = [c for c in keys if c in frame.columns and c not in predictions.columns]
    return pd.concat([frame.loc[predictions.index, taken], predictions], axis=1)


def cmd_score(args: argparse.Namespace) -> int:
    from .data.row_filter import filter_rows
    from .fitted import load_fitted

    fitted = load_fitted(args.model)
    data = args.data if args.rows is None else filter_rows(fitted.frame(args.data),
                                                            args.rows)
    metrics = fitted.score(data, **_unseen(fitted, args))
    if _json(args):
        _emit({"ok": True, "metrics": metrics})
    else:
        for key, value in metrics.items():
            print(f"{key} {value:.6g}")
    return 0


def cmd_fmt(args: argparse.Namespace) -> int:
    from .spec import format_text

    text, filename = _spec_text(args)
    layout = format_text(text, filename)
    changed = layout != text
    if args.spec == "-" and not args.check:
        sys.stdout.write(layout)
    elif args.check:
        if _json(args):
            _emit({"ok": not changed, "changed": changed})
        elif changed:
            print(f"{_spec_name(args)}: not in the canonical layout (run `stratlang fmt "
                  f"{args.spec}`)", file=sys.stderr)
        return 1 if changed else 0
    elif changed:
        _replace_file(Path(args.spec), layout)
    if _json(args) and args.spec != "-":
        _emit({"ok": True, "changed": changed})
    elif changed and args.spec != "-":
        print(f"formatted {args.spec}")
    return 0


def cmd_lsp(args: argparse.Namespace) -> int:
    from .lsp import serve

    serve(debug=args.debug)
    return 0


COMMANDS = {"check": cmd_check, "show": cmd_show, "fit": cmd_fit, "predict": cmd_predict,
            "score": cmd_score, "verify": cmd_verify, "tune": cmd_tune, "plot": cmd_plot,
            "fmt": cmd_fmt, "lsp": cmd_lsp}


_WARNED: set[str] = set()  # the warnings this command has printed: each is told once


def _warn(message, category, filename, lineno, file=None, line=None) -> None:
    text = str(message)
    if text in _WARNED:  # (a fit may bind its data more than once)
        return
    _WARNED.add(text)
    print(f"warning: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns the exit status: 0 done, 1 a problem with the input,
    the environment or the numbers (told in one message, never a traceback), 2 bad usage
    (argparse's), 130 interrupted. A closed pipe (``| head``) ends quietly with 0. Messages
    name the command line's flags where Python's arguments differ (``StratlangError.cli``)."""
    return _run(_parsed(argv))


def entry() -> int:
    """The installed ``stratlang`` program (and ``python -m stratlang``): :func:`main`,
    with the command run in a supervised child so that Ctrl-C is answered within a second
    even inside a long solver call (:mod:`stratlang.interrupts`)."""
    args = _parsed(None)
    return run_supervised(lambda: _run(args), lambda: _failed(args, "interrupted"))


def _parsed(argv: list[str] | None) -> argparse.Namespace:
    """The command line's arguments; flags that only go with another are a usage error
    (exit 2) without it."""
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "conditional", False) and args.interval is None:
        parser.error("--conditional goes with --interval LEVEL (the intervals it changes)")
    return args


def _run(args: argparse.Namespace) -> int:
    """The command, every failure turned into its message and exit status."""
    warnings.showwarning = _warn
    _WARNED.clear()
    try:
        _stdin_data(args)
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        return _closed_pipe()
    except SpecError as err:
        return _failed(args, err.for_cli(), [d.for_cli().to_dict() for d in err.diagnostics])
    except StratlangError as err:
        return _failed(args, f"error: {err.for_cli()}")
    except KeyboardInterrupt:
        _failed(args, "interrupted")
        return INTERRUPTED_STATUS
    except MemoryError:
        return _failed(args, "error: out of memory: the model or its data is too large for "
                             "this machine (fewer strata or backend 'dask' with workers "
                             "elsewhere)")
    except OSError as err:  # a file the command writes or reads outside the spec's checks
        where = f" '{err.filename}'" if getattr(err, "filename", None) else ""
        return _failed(args, f"error: cannot access{where}: {err.strerror or err}")
    except Exception as err:  # a bug: no traceback for users; --debug shows it
        if args.debug:
            raise
        return _failed(args, f"internal error (a bug in stratlang {_version()}): "
                             f"{type(err).__name__}: {err}\nplease report it to the stratlang "
                             "developers with the command line, and the traceback printed "
                             "when you add --debug")


def _failed(args: argparse.Namespace, text: str, errors: list[dict] | None = None) -> int:
    """Reports a failure and returns 1: ``text`` on standard error, or with --format json
    the document ``{"ok": false, "errors": [...]}`` on standard output (``errors``, else
    ``text`` as one message without its 'error: ' label)."""
    if _json(args):
        try:
            _emit({"ok": False,
                   "errors": errors or [{"message": text.removeprefix("error: ")}]})
            sys.stdout.flush()
        except BrokenPipeError:
            _closed_pipe()
    else:
        print(text, file=sys.stderr)
    return 1


def _closed_pipe() -> int:
    """The reader went away: like Unix tools, stop quietly. Later writes (and Python's
    flush at exit) go to /dev/null instead of raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. captured output)
        pass
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stratlang")
    except PackageNotFoundError:
        return "(not installed)"


if __name__ == "__main__":
    sys.exit(entry())
