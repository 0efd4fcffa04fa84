"""Every registered kind has a test case, and what each kind says of itself holds: a
distance's pairs and KD-tree coordinates agree with the distance by hand, a backend's fit
reaches the reference objective, a kind's declared parameters print and parse back."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.backends import BACKENDS
from stratlang.backends import personalized_reference as P
from stratlang.data.frames import Binder
from stratlang.data.personalized import bind_covariates, bind_personalized
from stratlang.kinds import DISTANCES, GRAPHS, LOSSES, REGULARIZERS, TRANSFORMS
from stratlang.kinds.transforms import TransformError

from .cases import (
    BACKEND_CASES,
    DISTANCE_CASES,
    GRAPH_CASES,
    LOSS_CASES,
    REGULARIZER_CASES,
    TRANSFORM_CASES,
    graph_frame,
    personalized_frame,
)
from .conftest import write

REGISTRIES = [(LOSSES, LOSS_CASES), (REGULARIZERS, REGULARIZER_CASES), (GRAPHS, GRAPH_CASES),
              (DISTANCES, DISTANCE_CASES), (TRANSFORMS, TRANSFORM_CASES),
              (BACKENDS, BACKEND_CASES)]


@pytest.mark.parametrize(("registry", "cases"), REGISTRIES, ids=lambda r: getattr(r, "what", ""))
def test_every_registered_kind_has_a_test_case(registry, cases):
    assert set(registry.names()) == set(cases), (
        f"{registry.what} kinds without a case in tests/cases.py: "
        f"{sorted(set(registry.names()) - set(cases))}; cases of no kind: "
        f"{sorted(set(cases) - set(registry.names()))}")


@pytest.mark.parametrize("registry", [r for r, _ in REGISTRIES[:5]], ids=lambda r: r.what)
def test_every_kind_documents_itself(registry):
    for name in registry.names():
        entry = registry[name]
        assert entry.name == name and entry.doc.strip(), name
        for param in entry.params:
            if param.default is not None and param.check is not None:
                assert param.check(param.default) is None, (name, param.name)


@pytest.mark.parametrize("name", DISTANCES.names())
def test_every_distance_agrees_with_its_definition(name, tmp_path):
    case = DISTANCE_CASES[name]
    for file, text in (case.files or {}).items():
        write(tmp_path, file, text)
    frame = pd.DataFrame(case.columns)
    frame["x"], frame["y"] = 1.0, 0.0
    spec = write(tmp_path, "m.strat", f"response y ~ squared\nfeatures x\npersonalize rank 1\n"
                                      f"  distance {case.target} ~ {case.call}\n")
    model = stratlang.load(spec).ir
    binder = Binder(model, frame)
    [encoded] = bind_covariates(binder)
    binder.out.raise_if_any()
    metric = DISTANCES[name]
    i, j = map(np.array, zip(*itertools.combinations(range(len(frame)), 2), strict=True))
    expected = np.array([case.distance(case.columns, a, b) for a, b in zip(i, j, strict=True)])
    np.testing.assert_allclose(metric.pairs(encoded, i, j), expected)
    coordinates = metric.coordinates(encoded, 2.5)
    if coordinates is not None:  # a KD-tree in these coordinates finds the same neighbours
        coords, norm = coordinates
        order = 1 if norm == "l1" else 2
        np.testing.assert_allclose(np.linalg.norm(coords[i] - coords[j], ord=order, axis=1),
                                   2.5 * expected)


@pytest.mark.parametrize("name", TRANSFORMS.names())
def test_every_transform_agrees_with_its_definition(name):
    case = TRANSFORM_CASES[name]
    entry = TRANSFORMS[name]
    p = {param.name: param.default for param in entry.params} | (case.params or {})
    values = np.array(case.values, dtype=object if entry.categorical else float)
    # the state learned from two pieces of the data is the one learned from all of it
    whole = entry.state([entry.summary(values, p)], p)
    halves = entry.state([entry.summary(values[:2], p), entry.summary(values[2:], p)], p)
    if entry.categorical or whole is None:
        assert halves == whole
    else:
        assert halves == pytest.approx(whole)
    np.testing.assert_allclose(entry.apply(values, p, whole), case.expected(values))
    text = f"{name}(u)"
    assert entry.names("u", text, p, whole) == case.names
    if case.bad is not None:
        bad, rows = case.bad
        with pytest.raises(TransformError) as info:
            entry.apply(np.array(bad, dtype=values.dtype), p, whole)
        assert list(info.value.rows) == rows


@pytest.mark.parametrize("name", BACKENDS.names())
def test_every_backend_reaches_the_reference(name, rng):
    case = BACKEND_CASES[name]
    backend = BACKENDS[name]
    model = stratlang.load(case.spec)
    if backend.family == "personalized":
        frame = personalized_frame(rng)
        fitted = model.fit(frame, backend=name, options={**case.options, "validation": 0})
        # the objective it reports is the reference's, evaluated at the point it reached
        design = bind_personalized(model.ir, frame)
        truth = P.objective(design, fitted.z, fitted.q, fitted.phi_array)
        assert fitted.objective.total == pytest.approx(truth["total"], rel=1e-8)
        assert fitted.objective.total < P.objective(
            design, np.zeros_like(fitted.z), fitted.q, fitted.phi_array)["total"]
        return
    frame = graph_frame(rng)
    fitted = model.fit(frame, backend=name, options=case.options)
    reference = model.fit(frame, backend="cvxpy", solver="clarabel")
    assert fitted.info["backend"] == name
    assert fitted.objective.total == pytest.approx(reference.objective.total, rel=1e-6)


def test_a_loss_that_cannot_value_a_record_is_refused_when_defined():
    import pytest

    from stratlang.kinds.losses import Loss

    with pytest.raises(TypeError, match="loss 'mute' defines none of pointwise"):
        class Mute(Loss):
            name = "mute"
            doc = "values nothing"


def _abstract_bases():
    from stratlang.backends.base import Backend
    from stratlang.fitted import FittedModel
    from stratlang.kinds.distances import Metric
    from stratlang.kinds.graphs import GraphKind, _EdgeList
    from stratlang.kinds.losses import _Distribution
    from stratlang.kinds.transforms import Transform, _Elementwise
    from stratlang.solvers.pointwise import Pointwise

    return [(Backend, "fit"), (Metric, "pairs"), (GraphKind, "build"), (_EdgeList, "edge_list"),
            (Transform, "apply"), (_Elementwise, "function"), (FittedModel, "theta"),
            (_Distribution, "cvxpy_aggregated"), (Pointwise, "derivatives")]


@pytest.mark.parametrize(("base", "method"), _abstract_bases(),
                         ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_an_abstract_base_refuses_a_subclass_that_lacks_its_method(base, method):
    """The bases meant to be subclassed are abc.ABCs: a subclass (a registry entry) that
    lacks a method is refused when it is made, not by a NotImplementedError at fit time."""
    bare = type("Bare", (base,), {})
    with pytest.raises(TypeError, match=rf"abstract method.*\b{method}\b"):
        bare()
