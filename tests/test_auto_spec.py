"""Weights written `auto` and `solver … select METHOD` in the language: the IR they give,
the canonical text (round trip), every misuse as a positioned error with its code, and
the editor support (keyword list, completions)."""

from __future__ import annotations

import json
import re

import pytest

from stratlang import SpecError
from stratlang.kinds import LOSSES, REGULARIZERS
from stratlang.language import ir
from stratlang.language.auto import AUTO, SELECT_OPTION, SELECTION_METHODS, quadratic
from stratlang.language.codes import CODES
from stratlang.lsp import completions
from stratlang.spec import compile_spec, to_text

from .conftest import ROOT


def problems(text: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(SpecError) as info:
        compile_spec(text, "t.strat", check_files=False)
    return [(d.span.line, d.span.column, d.code, d.message) for d in info.value.diagnostics
            if d.span is not None]


MIXED = ("model m\nresponse y ~ poisson_regression offset log_exposure\nfeatures x, intercept\n"
         "regularize auto * sum_squares + {0.1, 1} * sum_squares exclude [intercept]\n"
         "stratify s ~ path weight auto nodes 0..4\nstratify t ~ cycle weight 2\n"
         "solver admm select gcv\n")


def test_auto_weights_mixed_with_fixed_weights_and_sweeps():
    model = compile_spec(MIXED)
    assert model.autos() == {"reg0.sum_squares": ir.Hyper.auto(), "stratify.s": ir.Hyper.auto()}
    assert model.sweeps() == {"reg1.sum_squares": ir.Hyper("set", (0.1, 1.0))}
    assert model.solver == ir.Solver("admm", (), select="gcv")
    # a fixed value for an auto weight is taken as given; auto ones not given are left out
    assert model.weight_values({"reg1.sum_squares": 1.0}) == {"reg1.sum_squares": 1.0,
                                                              "stratify.t": 2.0}
    assert model.weight_values({"reg1.sum_squares": 1.0, "stratify.s": 3.0})["stratify.s"] == 3.0
    with pytest.raises(ValueError, match="an auto weight has no single value"):
        _ = model.autos()["stratify.s"].value


def test_auto_round_trips_through_the_canonical_text():
    model = compile_spec(MIXED)
    text = to_text(model)
    assert "regularize auto * sum_squares + {0.1, 1} * sum_squares" in text
    assert "stratify s ~ path weight auto nodes 0..4" in text
    assert text.rstrip().endswith("solver admm select gcv")
    assert compile_spec(text) == model


def test_a_column_named_auto_is_still_a_column():
    model = compile_spec("response auto ~ squared\nfeatures auto2, intercept\n"
                         "stratify s ~ path weight auto\n")
    assert model.response.columns == ("auto",) and model.autos() == {"stratify.s": ir.Hyper.auto()}


@pytest.mark.parametrize(("text", "expected"), [
    ("response y ~ squared\nfeatures x\nregularize auto * l1\n",
     [(3, 12, "S230", "auto chooses the weight of a quadratic penalty (sum_squares); 'l1' is "
       "not one: write a sweep, e.g. `{0.01, 0.1, 1} * l1`, and choose it by "
       "cross-validation with `stratlang tune`")]),
    ("response y ~ squared\nfeatures x\nregularize 0.1 * l1 + auto * zero\n",
     [(3, 23, "S230", "auto chooses the weight of a quadratic penalty (sum_squares); 'zero' "
       "is not one: write a sweep, e.g. `{0.01, 0.1, 1} * zero`, and choose it by "
       "cross-validation with `stratlang tune`")]),
    ("response y ~ squared\nfeatures x\nregularize 0.1 * l1 + nonnegative\n"
     "stratify s ~ path weight auto\n",
     [(3, 18, "S230", "auto weights read the penalties as a Gaussian prior, so every "
       "regularizer must be quadratic, and 'l1' is not: drop it, or write the auto weights "
       "as sweeps and choose them with `stratlang tune`"),
      (3, 23, "S230", "auto weights read the penalties as a Gaussian prior, so every "
       "regularizer must be quadratic, and 'nonnegative' is not: drop it, or write the auto "
       "weights as sweeps and choose them with `stratlang tune`")]),
    ("response y ~ huber\nfeatures x\nstratify s ~ path weight auto\n",
     [(3, 26, "S330", "auto weights are chosen by the likelihood of the data, and loss "
       "'huber' has no likelihood reading (the losses with one: squared, logistic, "
       "multinomial, poisson_regression, exponential_regression, bernoulli, poisson, "
       "exponential, gaussian): write a sweep, e.g. `weight {1, 10, 100}`, and choose it by "
       "cross-validation with `stratlang tune`")]),
    ("response y ~ hinge\nfeatures x\nregularize auto * sum_squares\n",
     [(3, 12, "S330", "auto weights are chosen by the likelihood of the data, and loss "
       "'hinge' has no likelihood reading (the losses with one: squared, logistic, "
       "multinomial, poisson_regression, exponential_regression, bernoulli, poisson, "
       "exponential, gaussian): write a sweep, e.g. `{0.01, 0.1, 1} * sum_squares`, and choose it "
       "by cross-validation with `stratlang tune`")]),
    ("response y ~ squared\nfeatures x\nstratify s ~ path weight 1\nsolver newton select reml\n",
     [(4, 15, "S331", "select chooses the weights written auto, and this model has none: "
       "write e.g. `stratify COLUMN ~ path weight auto` or `regularize auto * sum_squares`")]),
    ("response (a, b) ~ gaussian\nstratify s ~ path weight auto\nsolver admm select gcv\n",
     [(3, 20, "S335", "select gcv: GCV scores a deviance, and loss 'gaussian' has none (no "
       "finite saturated model): select reml or ml")]),
    ("response y ~ squared\nstratify s ~ path weight auto\nsolver admm select rml\n",
     [(3, 20, "S130", "select: unknown method 'rml'; did you mean 'reml'?")]),
    ("response y ~ squared\nstratify s ~ path weight auto\nsolver admm select 2\n",
     [(3, 20, "S130", "select takes a method: 'reml', 'ml', 'gcv'")]),
    ("response y ~ squared\nstratify s ~ path weight auto\nsolver admm select ml select ml\n",
     [(3, 23, "S203", "option 'select' given twice")]),
    ("response y ~ squared\nstratify s ~ path weight auto(1)\n",
     [(2, 26, "S207", "graph weight: auto takes no arguments")]),
    ("response y ~ squared\nfeatures x\nregularize auto * sum_squares\n"
     "personalize rank 2 match auto\ndistance a ~ abs\n",
     [(3, 12, "S332", "auto weights are chosen for stratified models; in a personalized "
       "model, write a sweep, e.g. `{0.01, 0.1, 1} * sum_squares`, and choose it by "
       "cross-validation with `stratlang tune`"),
      (4, 26, "S332", "match auto: auto weights are chosen for stratified models (the "
       "penalties are a Gaussian prior over the strata); a personalized model's match "
       "takes a number, or a sweep that `stratlang tune` chooses")]),
    ("response y ~ hinge\nstratify s ~ path weight 1\nstratify t ~ path weight 1\n"
     "interact s * t weight auto\n",
     [(4, 23, "S330", "auto weights are chosen by the likelihood of the data, and loss "
       "'hinge' has no likelihood reading (the losses with one: "
       + ", ".join(n for n in LOSSES if LOSSES[n].likelihood is not None)
       + "): write a sweep, e.g. `{0.01, 0.1, 1} * sum_squares`, and choose it by "
       "cross-validation with `stratlang tune`")]),
    ("response y ~ squared\nstratify s ~ path weight car\n",
     [(2, 26, "S207", "graph weight must be a number, a sweep set {…}, logspace(low, high, "
       "count) or auto")]),
])
def test_every_misuse_is_a_positioned_error(text, expected):
    assert problems(text) == expected


@pytest.mark.parametrize("features", ["x by s, intercept", "x shared, intercept",
                                      "x by (s weight auto), intercept shared",
                                      "x by s, z shared, intercept",
                                      "x by s, z where s in {1, 2}, intercept",
                                      "x by (s weight auto), z shared where t in {1}"])
def test_auto_beside_rows_held_constant_along_a_factor_is_accepted(features):
    """Rows constant along a factor, or present in some strata only (`where`), are chosen
    over their free coordinates (θ = Tφ): S333 is retired."""
    model = compile_spec(f"model m\nresponse y ~ squared\nfeatures {features}\n"
                         "stratify s ~ path weight auto\nstratify t ~ cycle weight auto\n"
                         "interact s * t weight auto\n")
    assert {"stratify.s", "stratify.t", "interact.s_t"} <= set(model.autos())
    assert "S333" not in CODES


def test_check_prints_the_caret(tmp_path, capsys):
    from stratlang.cli import main

    spec = tmp_path / "m.strat"
    spec.write_text("response y ~ quantile\nfeatures x\nregularize auto * sum_squares\n")
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:3:12: error[S330]: auto weights are chosen by the likelihood" in err
    assert "    regularize auto * sum_squares\n               ^^^^\n" in err


def test_every_loss_declares_its_likelihood_reading():
    readable = {n for n in LOSSES.names() if LOSSES[n].likelihood is not None}
    assert readable == {"squared", "logistic", "multinomial", "poisson_regression",
                        "exponential_regression", "bernoulli", "poisson", "exponential",
                        "gaussian"}
    assert [n for n in readable if LOSSES[n].likelihood.dispersion] == ["squared"]
    # each has the unit whose curvature the Laplace approximation needs, or its curvature
    # over θ's free coordinates when it sees each stratum's θ whole
    for name in readable:
        p = {q.name: q.default for q in LOSSES[name].params}
        assert (LOSSES[name].likelihood_unit(p) is not None) != LOSSES[name].sees_stratum_whole


def test_quadratic_penalties_are_the_regularizer_entries_answer():
    able = [n for n in REGULARIZERS.names()
            if quadratic(REGULARIZERS[n], {p.name: p.default for p in REGULARIZERS[n].params})]
    assert able == ["sum_squares"]


def test_editor_keywords_hold_auto_and_select():
    grammar = json.loads((ROOT / "editors" / "vscode" / "syntaxes" / "strat.tmLanguage.json")
                         .read_text())
    words = re.search(r"\(([a-z|]+)\)", grammar["repository"]["word"]["match"]).group(1)
    assert {AUTO, SELECT_OPTION} <= set(words.split("|"))


def test_completions_offer_auto_and_the_methods():
    assert completions("stratify s ~ path weight ", "t.strat", 0, 25) == [(AUTO, "keyword")]
    assert completions("regularize ", "t.strat", 0, 11)[0] == (AUTO, "keyword")
    assert completions("solver admm select ", "t.strat", 0, 19) == [
        (m, "keyword") for m in SELECTION_METHODS]
    assert (SELECT_OPTION, "parameter") in completions("solver admm ", "t.strat", 0, 12)


def test_the_docs_state_the_engines_exact_limit():
    from stratlang.solvers.curvature import EXACT_LIMIT

    for document in ("README.md", "docs/language.md"):
        text = (ROOT / document).read_text(encoding="utf-8")
        assert f"{EXACT_LIMIT:,}" in text and "auto" in text, document


def test_the_builder_writes_auto_weights():
    from stratlang import Spec

    model = (Spec("b").response("y", "squared").features("x", "intercept")
             .regularize("sum_squares", "auto").stratify("s", "path", weight="auto").model())
    assert model.ir.autos() == {"reg0.sum_squares": ir.Hyper.auto(), "stratify.s": ir.Hyper.auto()}


def test_an_interaction_weight_may_be_auto():
    checked = compile_spec("response y ~ squared\nstratify s ~ path weight auto\n"
                           "stratify t ~ cycle weight 1\ninteract s * t weight auto\n"
                           "solver admm select ml\n", "t.strat", check_files=False)
    assert set(checked.autos()) == {"stratify.s", "interact.s_t"}


def test_a_row_weight_may_be_auto_when_the_term_varies_over_every_factor():
    checked = compile_spec("response y ~ squared\nfeatures x by (s weight auto, t), intercept\n"
                           "stratify s ~ path weight auto\nstratify t ~ cycle weight 1\n",
                           "t.strat", check_files=False)
    assert set(checked.autos()) == {"stratify.s", "stratify.s[x]"}
