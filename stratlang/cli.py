"""``stratlang`` command line: check, show, fit, predict, score.

Exit status: 0 on success, 1 on a user error (bad spec, bad data, numerical failure),
2 on a usage error. A user never sees a Python traceback (``--debug`` shows one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from .language.errors import SpecError, StratlangError
from .language.policies import UNSEEN_POLICIES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stratlang", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="check a spec (and its data) and report every problem")
    p.add_argument("spec")
    p.add_argument("--data", help="CSV file to check the spec against")
    p.add_argument("--graph", action="append", default=[], metavar="COLUMN=FILE", help=GRAPH_HELP)
    p.add_argument("--format", choices=("text", "json"), default="text")

    p = sub.add_parser("show", help="print the canonical spec and a summary of the model")
    p.add_argument("spec")
    p.add_argument("--data", help="CSV file (for the strata observed in it)")
    p.add_argument("--graph", action="append", default=[], metavar="COLUMN=FILE", help=GRAPH_HELP)

    p = sub.add_parser("fit", help="fit a spec to data")
    p.add_argument("spec")
    p.add_argument("--data", help="CSV file (default: the spec's data statement)")
    p.add_argument("--backend", help="fitting backend: admm (the default when it applies), "
                   "cvxpy, dask, subgradient")
    p.add_argument("--solver", help="CVXPY solver for the cvxpy backend (clarabel, scs, ...)")
    p.add_argument("--scheduler", help="dask backend: scheduler address (default: a LocalCluster)")
    p.add_argument("--workers", type=int, help="dask backend: LocalCluster worker processes")
    p.add_argument("--output", metavar="DIR", help="dask backend: the workers write θ under DIR "
                   "as Parquet parts (plus DIR/model.json, for predict and score)")
    p.add_argument("--weight", action="append", default=[], metavar="NAME=VALUE",
                   help="fix a hyper-parameter, e.g. stratify.age=100 (repeatable)")
    p.add_argument("--graph", action="append", default=[], metavar="COLUMN=FILE", help=GRAPH_HELP)
    p.add_argument("--out", help="write the fitted model here (JSON + .npz beside it)")

    p = sub.add_parser("verify", help="fit with the CVXPY reference and with ADMM; compare")
    p.add_argument("spec")
    p.add_argument("--data", help="CSV file (default: the spec's data statement)")
    p.add_argument("--solver", help="CVXPY solver for the reference")
    p.add_argument("--weight", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--graph", action="append", default=[], metavar="COLUMN=FILE", help=GRAPH_HELP)

    p = sub.add_parser("tune", help="cross-validate the spec's sweeps and refit the best")
    p.add_argument("spec")
    p.add_argument("--data", help="CSV file (default: the spec's data statement)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--metric", help="metric to optimize (default: the loss's own)")
    p.add_argument("--backend", help="fitting backend (default: admm when it applies)")
    p.add_argument("--graph", action="append", default=[], metavar="COLUMN=FILE", help=GRAPH_HELP)
    p.add_argument("--out", help="write the refitted best model here")

    p = sub.add_parser("plot", help="draw a fitted model (PNG, SVG or PDF)")
    p.add_argument("model", help="a fitted model written by `stratlang fit --out`")
    p.add_argument("--param", help="the parameter (row[:output]) to show; default: the first")
    p.add_argument("--over", help="stratification column along the x axis")
    p.add_argument("--by", help="column for separate lines, heat-map rows, or the colour")
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
        p.add_argument("--unseen", choices=UNSEEN_POLICIES, default="error",
                       help="a stratum value the fit has not seen: an error (default), the "
                            "model averaged over its factor's nodes, or its star's hub")
        if name == "predict":
            p.add_argument("--out", help="CSV file for the predictions (default: stdout)")
    return parser


GRAPH_HELP = ("the edge-list CSV (source,target[,weight]) of a factor the spec declares "
              "'given', e.g. state=borders.csv (repeatable)")


def _graphs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        column, sep, path = item.partition("=")
        if not sep or not column.strip() or not path.strip():
            raise StratlangError(f"--graph expects COLUMN=FILE, got '{item}'")
        out[column.strip()] = path.strip()
    return out


def _weights(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise StratlangError(f"--weight expects NAME=VALUE, got '{item}'") from None
    return out


def cmd_check(args) -> int:
    from .backends.base import bind_family
    from .model import load

    try:
        model = load(Path(args.spec), graphs=_graphs(args.graph))
        if args.data or model.ir.data:
            bind_family(model.ir, args.data, model.graphs)
    except SpecError as err:
        if args.format == "json":
            print(json.dumps({"ok": False, "errors": [d.to_dict() for d in err.diagnostics]},
                             indent=1))
        else:
            print(err.format(), file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps({"ok": True, "errors": []}))
    else:
        print(f"{args.spec}: ok ({model.ir.kind} model '{model.name}')")
    return 0


def cmd_show(args) -> int:
    from .backends.base import bind_family
    from .data.features import factor_text
    from .kinds.losses import LOSSES
    from .model import load

    model = load(Path(args.spec), graphs=_graphs(args.graph))
    print(model.text, end="")
    ir = model.ir
    loss = LOSSES[ir.response.loss.name]
    print(f"# {ir.kind} model, loss {loss.name}: {loss.doc}")
    if ir.personalize is not None:
        print(f"# personalized: rank {ir.personalize.rank}, "
              f"{len(ir.personalize.distances)} covariate distance(s)")
    if ir.response.offset is not None:
        print(f"# offset: {factor_text(ir.response.offset)} is added to the linear predictor")
    if ir.weights is not None:
        print(f"# weights: column '{ir.weights}' multiplies each record's loss")
    if not (args.data or ir.data):
        print("# strata and parameter rows: known once data is given (--data)")
        return 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        design = bind_family(ir, model.frame(args.data), model.graphs)
    for warning in caught:
        print(f"# {warning.message}")
    print(f"# {design.n_records} records; parameter "
          f"rows {', '.join(design.rows or loss.row_names((), ir.response.columns))}")
    if ir.personalize is not None:
        return 0
    strata = design.strata
    print(f"# strata K = {strata.k}; {strata.k * len(design.rows)} parameters per output")
    for f in strata.factors:
        print(f"#   factor ({', '.join(f.columns)}): {f.graph.structure} graph, {f.n} nodes, "
              f"{f.graph.n_edges} edges" + (f", hub {f.column_labels[0][f.hub]!r}"
                                            if f.hub is not None else ""))
    return 0


def _cluster_options(args) -> dict:
    """The cluster flags as backend options; a backend that does not declare them gets a
    message naming the flags."""
    from .backends import BACKENDS

    options = {k: v for k, v in (("scheduler", args.scheduler), ("workers", args.workers),
                                 ("output", args.output)) if v is not None}
    if options:
        able = [b.name for b in BACKENDS.entries() if all(k in b.options for k in options)]
        if args.backend not in able:
            flags = ", ".join(f"--{k}" for k in options)
            raise StratlangError(f"{flags} appl{'y' if len(options) > 1 else 'ies'} to "
                                 + " and ".join(f"--backend {b}" for b in able))
    return options


def cmd_fit(args) -> int:
    from .backends.dask import is_partitioned_path
    from .model import load

    model = load(Path(args.spec), graphs=_graphs(args.graph))
    options = _cluster_options(args)
    fitted = model.fit(args.data, backend=args.backend, solver=args.solver,
                       weights=_weights(args.weight) or None, options=options or None)
    print(fitted.summary())
    if args.data is None or not is_partitioned_path(args.data):  # scoring partitioned data
        # would bring every record to this machine
        scores = fitted.score(args.data)
        print("  training " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))
    if args.output:
        print(f"  θ written under {args.output} (read back with `stratlang predict {args.output}`)")
    if args.out:
        path = fitted.save(args.out)
        print(f"  saved {path} and {path.with_suffix('.npz')}")
    return 0


def cmd_verify(args) -> int:
    from .model import load

    result = load(Path(args.spec), graphs=_graphs(args.graph)).verify(args.data, weights=_weights(args.weight) or None,
                                          solver=args.solver)
    print(result)
    return 0


def cmd_tune(args) -> int:
    from .model import load

    if args.folds < 2:
        raise StratlangError("--folds must be at least 2")
    result = load(Path(args.spec), graphs=_graphs(args.graph)).tune(args.data, folds=args.folds, metric=args.metric,
                                        backend=args.backend)
    print(result)
    if args.out:
        path = result.fitted.save(args.out)
        print(f"saved {path} and {path.with_suffix('.npz')}")
    return 0


def cmd_plot(args) -> int:
    from .persistence import load_fitted

    fitted = load_fitted(args.model)
    if args.convergence:
        fitted.plot_convergence(args.out)
    else:  # each kind of fit takes the options that apply to it
        view = {"param": args.param, "over": args.over, "by": args.by, "method": args.embedding}
        fitted.plot(out=args.out, **{k: v for k, v in view.items() if v is not None})
    print(f"wrote {args.out}")
    return 0


def _unseen(fitted, args) -> dict:
    """--unseen, for the fits that have strata (a personalized model has none to miss)."""
    if fitted.kind != "stratified":
        if args.unseen != "error":
            raise StratlangError("--unseen applies to stratified models")
        return {}
    return {"unseen": args.unseen}


def cmd_predict(args) -> int:
    from .persistence import load_fitted

    fitted = load_fitted(args.model)
    predictions = fitted.predict(args.data, **_unseen(fitted, args))
    if args.out:
        predictions.to_csv(args.out)
        print(f"wrote {len(predictions)} predictions to {args.out}")
    else:
        predictions.to_csv(sys.stdout)
    return 0


def cmd_score(args) -> int:
    from .persistence import load_fitted

    fitted = load_fitted(args.model)
    for key, value in fitted.score(args.data, **_unseen(fitted, args)).items():
        print(f"{key} {value:.6g}")
    return 0


COMMANDS = {"check": cmd_check, "show": cmd_show, "fit": cmd_fit, "predict": cmd_predict,
            "score": cmd_score, "verify": cmd_verify, "tune": cmd_tune, "plot": cmd_plot}


def _warn(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns the exit status: 0 done, 1 a problem with the input,
    the environment or the numbers (told in one message, never a traceback), 2 bad usage
    (argparse's), 130 interrupted. A closed pipe (``| head``) ends quietly with 0."""
    args = _parser().parse_args(argv)
    warnings.showwarning = _warn
    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        return _closed_pipe()
    except SpecError as err:
        print(err.format(), file=sys.stderr)
        return 1
    except StratlangError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory: the model or its data is too large for this machine "
              "(fewer strata or backend 'dask' with workers elsewhere)", file=sys.stderr)
        return 1
    except OSError as err:  # a file the command writes or reads outside the spec's checks
        where = f" '{err.filename}'" if getattr(err, "filename", None) else ""
        print(f"error: cannot access{where}: {err.strerror or err}", file=sys.stderr)
        return 1
    except Exception as err:  # a bug: no traceback for users; --debug shows it
        if args.debug:
            raise
        print(f"internal error (a bug in stratlang {_version()}): {type(err).__name__}: {err}\n"
              "please report it to the stratlang developers with the command line, and the "
              "traceback printed when you add --debug", file=sys.stderr)
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
    sys.exit(main())
