"""The dask backend on a 2-process LocalCluster: the same answers as the in-memory ADMM."""

from __future__ import annotations

import os
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.kinds import GRAPHS

from .cases import GRAPH_CASES, graph_frame

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")

TIGHT = {"eps_abs": 1e-10, "eps_rel": 1e-10, "max_iter": 20000}


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        with distributed.Client(cluster) as c:
            yield c
        cluster.close()


def frame_for(rng, n: int = 300) -> pd.DataFrame:
    frame = pd.DataFrame({"g": rng.integers(0, 4, n), "h": rng.integers(0, 3, n),
                          "x": rng.normal(size=n)})
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-frame.x * (frame.g - 1.5)))).astype(int)
    return frame


def both(spec, frame, client, data=None, **options):
    model = stratlang.load(spec)
    local = model.fit(frame, backend="admm", options=TIGHT)
    remote = model.fit(frame if data is None else data, backend="dask",
                       options={**TIGHT, "scheduler": client, **options})
    return local, remote


@pytest.mark.parametrize("graph", GRAPHS.names())
def test_every_graph_kind_matches_the_in_memory_admm(graph, client, rng, tmp_path):
    frame = graph_frame(rng, 300, tmp_path)
    case = GRAPH_CASES[graph]
    second = "stratify h ~ path weight 0.5\n" if "h" not in case.target else ""
    spec = tmp_path / "m.strat"
    spec.write_text("response y ~ logistic\nfeatures x, intercept\nregularize 0.1 * l1\n"
                    + case.statement() + second)
    if case.given:
        local = stratlang.load(spec, graphs=case.graphs()).fit(frame, backend="admm",
                                                                options=TIGHT)
        remote = stratlang.load(spec, graphs=case.graphs()).fit(
            frame, backend="dask", options={**TIGHT, "scheduler": client})
        assert remote.objective.total == pytest.approx(local.objective.total, rel=1e-8)
        return
    local, remote = both(str(spec), frame, client)
    assert remote.info["backend"] == "dask" and remote.info["converged"]
    assert remote.objective.total == pytest.approx(local.objective.total, rel=1e-8)
    np.testing.assert_allclose(remote.theta_array, local.theta_array, atol=1e-7)


@pytest.mark.parametrize("loss", ["squared", "poisson", "quantile", "gaussian"])
def test_losses_and_constraints_match(loss, client, rng):
    frame = frame_for(rng)
    frame["c"] = rng.poisson(2 + frame.g)
    frame["r"] = frame.x * frame.g + rng.normal(size=len(frame))
    frame["r2"] = frame.r + rng.normal(size=len(frame))
    body = {"squared": "response r ~ squared\nfeatures x, intercept\nregularize nonnegative\n",
            "poisson": "response c ~ poisson\n",
            "quantile": "response r ~ quantile(0.3)\nfeatures x, intercept\n",
            "gaussian": "response (r, r2) ~ gaussian\nregularize 0.1 * trace\n"}[loss]
    spec = body + "stratify g ~ path weight 2 nodes 0..5\nstratify h ~ cycle weight 1\n"
    local, remote = both(spec, frame, client, blocks=3)
    assert remote.objective.total == pytest.approx(local.objective.total, rel=1e-8)
    np.testing.assert_allclose(remote.theta_array, local.theta_array, atol=1e-6)


def test_partitioned_parquet_input_is_bound_on_the_workers(client, rng, tmp_path):
    frame = frame_for(rng, 600)
    frame["g"] = frame.g.map(dict(enumerate("abcd")))  # labels encoded from the data
    for i in range(4):
        frame.iloc[i * 150:(i + 1) * 150].to_parquet(tmp_path / f"part-{i}.parquet")
    spec = ("response y ~ logistic\nfeatures x, intercept\nregularize 0.1 * sum_squares\n"
            "stratify g ~ path weight 2\nstratify h ~ path weight 1\n")
    data = dd.read_parquet(str(tmp_path / "*.parquet"))
    local, remote = both(spec, frame, client, data=data)
    assert remote.objective.total == pytest.approx(local.objective.total, rel=1e-8)
    np.testing.assert_allclose(remote.theta_array, local.theta_array, atol=1e-7)
    assert list(remote.strata.index()) == list(local.strata.index())
    np.testing.assert_allclose(remote.predict(frame)["probability"],
                               local.predict(frame)["probability"], atol=1e-7)


def test_partitions_with_offsets_weights_features_and_missing_values(client, rng, tmp_path):
    """Learned transforms (standardize, categorical levels) are learned from every
    partition, offsets and weights travel with the records, missing rows are dropped on
    the workers: the in-memory fit's answer."""
    frame = frame_for(rng, 800)
    frame["region"] = rng.choice(["n", "s", "e"], len(frame))
    frame["age"] = rng.normal(40, 10, len(frame))
    frame["o"] = rng.normal(size=len(frame)) * 0.3
    frame["w"] = rng.choice([0.0, 1.0, 2.0], len(frame))
    frame.loc[frame.index[::97], "age"] = np.nan
    for i in range(4):
        frame.iloc[i * 200:(i + 1) * 200].to_csv(tmp_path / f"part-{i}.csv", index=False)
    spec = ("response y ~ logistic offset o\nfeatures intercept, categorical(region), "
            "standardize(age), x:standardize(age)\nweights w\nmissing drop\n"
            "regularize 0.1 * sum_squares\nstratify g ~ path weight 2\nstratify h ~ path\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        local, remote = both(spec, frame, client, data=str(tmp_path / "*.csv"))
    assert remote.objective.total == pytest.approx(local.objective.total, rel=1e-8)
    np.testing.assert_allclose(remote.theta_array, local.theta_array, atol=1e-7)
    assert remote.rows == local.rows
    learned, whole = remote.features.states, local.features.states
    assert learned["categorical(region)"] == whole["categorical(region)"]
    assert learned["standardize(age)"] == pytest.approx(whole["standardize(age)"], rel=1e-12)
    assert remote.info["dropped_rows"] == local.info["dropped_rows"] == {"age": 9}


def test_a_stratum_left_out_by_missing_drop_is_a_node_on_the_workers_too(client, rng,
                                                                         tmp_path):
    frame = frame_for(rng, 400)
    frame["y"] = frame.y.astype(float)
    frame.loc[frame.g == 2, "y"] = np.nan
    for i in range(2):
        frame.iloc[i * 200:(i + 1) * 200].to_csv(tmp_path / f"part-{i}.csv", index=False)
    spec = ("response y ~ logistic\nfeatures x, intercept\nmissing drop\n"
            "stratify g ~ path weight 2\nstratify h ~ path\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        local, remote = both(spec, frame, client, data=str(tmp_path / "*.csv"))
    assert list(remote.strata.index()) == list(local.strata.index())
    assert local.strata.shape == (4, 3)
    np.testing.assert_allclose(remote.theta_array, local.theta_array, atol=1e-7)


def test_a_worker_killed_mid_fit_restarts_and_gives_the_right_answer(client, rng):
    frame = frame_for(rng, 3000)
    spec = ("response y ~ logistic\nfeatures x, intercept\nregularize 0.1 * sum_squares\n"
            "stratify g ~ path weight 2 nodes 0..39\nstratify h ~ path weight 1\n")
    frame["g"] = rng.integers(0, 40, len(frame))
    model = stratlang.load(spec)
    local = model.fit(frame, backend="admm", options=TIGHT)
    victim = sorted(client.scheduler_info()["workers"])[0]

    def iterations_done() -> int:  # on a worker: how far its blocks are
        from stratlang.solvers.distributed import _BLOCKS

        return max((block.iteration for block in _BLOCKS.values()), default=0)

    def kill() -> None:  # once the iterations run: ten done on the victim
        deadline = time.monotonic() + 60
        while (client.run(iterations_done, workers=[victim])[victim] < 10
               and time.monotonic() < deadline):
            time.sleep(0.01)
        client.run(os._exit, 1, workers=[victim], on_error="ignore")  # it cannot answer

    killer = threading.Thread(target=kill)
    killer.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            remote = model.fit(frame, backend="dask", options={**TIGHT, "scheduler": client})
        except stratlang.NumericalError as error:  # allowed: a clear error, never a wrong answer
            assert "Dask fit stopped" in str(error)
            remote = None
    killer.join()
    client.wait_for_workers(2, timeout=60)
    if remote is not None:
        assert remote.info["restarts"] >= 1  # its blocks' iterates died with it
        assert remote.info["converged"]
        assert remote.objective.total == pytest.approx(local.objective.total, rel=1e-8)


def test_personalized_models_are_refused_clearly(client):
    model = stratlang.load("response y ~ squared\nfeatures a\npersonalize rank 1\n"
                           "distance u ~ abs\n")
    with pytest.raises(stratlang.StratlangError, match="backend 'dask' cannot fit it"):
        model.fit(pd.DataFrame({"y": [1.0, 2.0], "a": [0.0, 1.0], "u": [0.0, 1.0]}),
                  backend="dask")


def test_cli_fits_partitioned_csv_files_on_a_scheduler(client, rng, tmp_path, capsys):
    from stratlang.cli import main

    frame = frame_for(rng, 400)
    for i in range(2):
        frame.iloc[i * 200:(i + 1) * 200].to_csv(tmp_path / f"part-{i}.csv", index=False)
    spec = tmp_path / "m.strat"
    spec.write_text("response y ~ logistic\nfeatures x, intercept\nregularize 0.1 * sum_squares\n"
                    "stratify g ~ path weight 2\n")
    local = stratlang.load(str(spec)).fit(frame, backend="admm")
    code = main(["fit", str(spec), "--data", str(tmp_path / "part-*.csv"), "--backend", "dask",
                 "--scheduler", client.scheduler.address, "--out", str(tmp_path / "fit.json")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "dask" in out
    saved = stratlang.load_fitted(str(tmp_path / "fit.json"))
    np.testing.assert_allclose(saved.theta_array, local.theta_array, atol=1e-4)
    assert main(["fit", str(spec), "--data", str(tmp_path / "none-*.csv"), "--backend", "dask",
                 "--scheduler", client.scheduler.address]) == 1
    assert "no .parquet or .csv files match" in capsys.readouterr().err


def test_bad_data_in_one_file_is_positioned_in_the_spec_and_the_file(client, rng, tmp_path,
                                                                      capsys):
    from stratlang.cli import main

    (tmp_path / "part-0.csv").write_text("y,x,g\n1,0.5,0\n0,0.1,1\n")
    (tmp_path / "part-1.csv").write_text("y,x,g\n1,0.3,0\n0,abc,1\n")
    spec = tmp_path / "m.strat"
    spec.write_text("response y ~ logistic\nfeatures x\nstratify g ~ path\n")
    code = main(["fit", str(spec), "--data", str(tmp_path / "part-*.csv"), "--backend", "dask",
                 "--scheduler", client.scheduler.address])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"{spec}:2:10: error[S503]: column 'x' must be numeric; value 'abc' in row 1 "
                          "(line 3 of part-1.csv)\n    features x\n             ^")
    assert "Traceback" not in err


def test_an_unreachable_scheduler_in_the_spec_is_positioned(tmp_path):
    spec = tmp_path / "m.strat"
    spec.write_text('response y ~ squared\nstratify g ~ path\nsolver dask scheduler "tcp://127.0.0.1:9"\n')
    with pytest.raises(stratlang.SpecError) as caught:
        stratlang.load(str(spec)).fit(pd.DataFrame({"y": [1.0, 2.0], "g": [0, 1]}))
    assert str(caught.value).startswith(
        f"{spec}:3:1: error[S205]: cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'")


def test_theta_written_by_the_workers_reads_back_for_prediction(client, rng, tmp_path):
    frame = frame_for(rng, 500)
    frame["h"] = frame.h.map({0: "lo", 1: "mid", 2: "hi"})  # text labels survive the round trip
    spec = ("response y ~ logistic\nfeatures x, intercept\nregularize 0.1 * l1\n"
            "stratify g ~ path weight 2\nstratify h ~ complete weight 1\n")
    out = tmp_path / "fit"
    local, remote = both(spec, frame, client, output=str(out), blocks=3)
    parts = sorted(p.name for p in (out / "theta").iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    written = pd.read_parquet(out / "theta")
    assert list(written.columns) == ["stratum", "g", "h", "x", "intercept"]
    assert set(written.h) == {"lo", "mid", "hi"}
    assert remote.objective.total == pytest.approx(local.objective.total, rel=1e-8)
    np.testing.assert_allclose(remote.theta_array, local.theta_array, atol=1e-7)  # read lazily
    pd.testing.assert_frame_equal(remote.theta, local.theta, atol=1e-7)
    reread = stratlang.load_fitted(str(out))
    np.testing.assert_allclose(reread.predict(frame)["probability"],
                               local.predict(frame)["probability"], atol=1e-7)
    assert reread.objective.total == pytest.approx(local.objective.total, rel=1e-8)
    (out / "theta" / "part-00001.parquet").unlink()
    with pytest.raises(stratlang.StratlangError, match="hold 6 of the model's 12 strata"):
        stratlang.load_fitted(str(out)).predict(frame)


def test_cli_writes_theta_from_the_workers_and_predicts_from_it(client, rng, tmp_path, capsys):
    from stratlang.cli import main

    frame = frame_for(rng, 300)
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = tmp_path / "m.strat"
    spec.write_text("response y ~ logistic\nfeatures x, intercept\nstratify g ~ path weight 2\n")
    out = tmp_path / "fit"
    assert main(["fit", str(spec), "--data", str(tmp_path / "d.csv"), "--backend", "dask",
                 "--scheduler", client.scheduler.address, "--output", str(out)]) == 0
    assert f"θ written under {out}" in capsys.readouterr().out
    assert main(["predict", str(out), "--data", str(tmp_path / "d.csv"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    local = stratlang.load(str(spec)).fit(frame, backend="admm")
    np.testing.assert_allclose(pd.read_csv(tmp_path / "p.csv")["probability"],
                               local.predict(frame)["probability"], atol=1e-5)
    assert main(["fit", str(spec), "--data", str(tmp_path / "d.csv"), "--output", "x"]) == 1
    assert "--output applies to --backend dask" in capsys.readouterr().err


@pytest.mark.parametrize("order", ["general first", "general second", "general alone"])
def test_a_large_general_factor_is_solved_by_conjugate_gradients(order, client, rng, tmp_path,
                                                                  monkeypatch):
    import stratlang.solvers.laplacian as laplacian

    monkeypatch.setattr(laplacian, "DENSE_LIMIT", 5)  # a 12-node graph counts as large
    edges = [(i, (i * 5 + 3) % 12, 1 + i % 3) for i in range(12)] + [(i, i + 1, 1) for i in range(11)]
    (tmp_path / "g.csv").write_text("a,b,w\n" + "".join(f"{a},{b},{w}\n" for a, b, w in edges))
    frame = frame_for(rng, 400)
    frame["g"] = rng.integers(0, 12, len(frame))
    general = f'stratify g ~ edges("{tmp_path / "g.csv"}") weight 2\n'
    other = "stratify h ~ cycle weight 1\n"
    strata = {"general first": general + other, "general second": other + general,
              "general alone": general}[order]
    spec = "response y ~ logistic\nfeatures x, intercept\nregularize 0.1 * l1\n" + strata
    local, remote = both(spec, frame, client, blocks=3)
    assert remote.objective.total == pytest.approx(local.objective.total, rel=1e-8)
    np.testing.assert_allclose(remote.theta_array, local.theta_array, atol=1e-7)


def test_two_large_general_factors_are_refused_clearly(client, tmp_path, monkeypatch):
    import stratlang.solvers.laplacian as laplacian

    monkeypatch.setattr(laplacian, "DENSE_LIMIT", 2)
    (tmp_path / "g.csv").write_text("a,b\n0,1\n1,2\n2,0\n0,3\n")
    spec = (f'response y ~ squared\nstratify g ~ edges("{tmp_path / "g.csv"}")\n'
            f'stratify h ~ edges("{tmp_path / "g.csv"}")\n')
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0], "g": [0, 1, 2], "h": [1, 2, 3]})
    with pytest.raises(stratlang.StratlangError, match=r"at most one general graph factor above "
                       r"2 nodes; \(g\) and \(h\) both are; use backend='newton'"):
        stratlang.load(spec).fit(frame, backend="dask", options={"scheduler": client})


def test_iteration_limit_gives_the_in_memory_iterate_and_a_warning(client, rng):
    """Stopped early, both backends hold the same iterate: the same penalty adaptation
    step by step, decided on the workers and on the client alike (a closed-form prox, so
    no inexact inner solves blur the comparison)."""
    frame = frame_for(rng)
    frame["c"] = rng.poisson(2 + frame.g)
    spec = "response c ~ poisson\nstratify g ~ path weight 2\nstratify h ~ cycle weight 1\n"
    model = stratlang.load(spec)
    options = {"max_iter": 27, "eps_abs": 1e-12, "eps_rel": 1e-12, "penalty": 100.0}
    with pytest.warns(stratlang.NumericalWarning, match="did not converge in 27 iterations"):
        local = model.fit(frame, backend="admm", options=options)
    with pytest.warns(stratlang.NumericalWarning, match="did not converge in 27 iterations"):
        remote = model.fit(frame, backend="dask", options={**options, "scheduler": client})
    assert remote.info["iterations"] == local.info["iterations"] == 27
    assert remote.info["penalty"] == local.info["penalty"] < 100  # adapted (every 10th)
    np.testing.assert_allclose([h[1:] for h in remote.info["history"]],
                               [h[1:] for h in local.info["history"]], rtol=1e-9)
    assert remote.objective.total == pytest.approx(local.objective.total, rel=1e-9)


def test_an_output_in_the_spec_is_relative_to_the_spec_file(client, rng, tmp_path, monkeypatch):
    frame = frame_for(rng, 200)
    (tmp_path / "models").mkdir()
    spec = tmp_path / "models" / "m.strat"
    spec.write_text('response y ~ logistic\nfeatures x, intercept\nstratify g ~ path\n'
                    'solver dask output "fit"\n')
    monkeypatch.chdir(tmp_path)  # not the spec's directory
    fitted = stratlang.load(str(spec)).fit(frame, options={"scheduler": client})
    assert (tmp_path / "models" / "fit" / "model.json").is_file()
    threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
    parts = (tmp_path / "models" / "fit" / "theta").glob("part-*.parquet")
    assert len(list(parts)) == threads  # one block per worker thread, one part per block
    reread = stratlang.load_fitted(str(tmp_path / "models" / "fit"))
    np.testing.assert_allclose(reread.theta_array, fitted.theta_array)


def test_the_exchange_costs_one_task_per_pair_of_workers_not_of_blocks(client, rng):
    # six blocks on two workers: a task per pair of blocks would be 2 × 6 × 3 per iteration
    frame = frame_for(rng, 400)
    frame["g"] = rng.integers(0, 12, len(frame))
    spec = "response y ~ logistic\nfeatures x, intercept\nstratify g ~ path nodes 0..11\n"
    with distributed.get_task_stream(client) as stream:
        local, remote = both(spec, frame, client, blocks=6)
    sends = [t for t in stream.data if t["key"].startswith("_send")]
    exchanges = 2 * (remote.info["iterations"] + 1)  # two per iteration and the final L θ
    # iteration t + 1 is queued while t's sums are read: one more may have run
    assert exchanges * 2 <= len(sends) <= (exchanges + 2) * 2
    assert remote.objective.total == pytest.approx(local.objective.total, rel=1e-8)


def test_workers_lost_in_every_attempt_end_in_a_clear_error(client, rng, monkeypatch):
    import concurrent.futures

    from stratlang.solvers import distributed as D

    attempts = []

    def lost(*args, **kwargs):  # every attempt's futures cancelled, as after a lost worker
        attempts.append(1)
        raise concurrent.futures.CancelledError("lost dependencies")

    monkeypatch.setattr(D, "_iterate", lost)
    model = stratlang.load("response y ~ logistic\nfeatures x, intercept\nstratify g ~ path\n")
    with pytest.raises(stratlang.NumericalError, match="Dask fit stopped: workers were lost"):
        model.fit(frame_for(rng), backend="dask", options={"scheduler": client})
    assert len(attempts) == 3  # the first and two restarts


def test_rows_with_their_own_graph_terms_match_the_in_memory_admm(client, rng):
    """`by`, `shared`, an own weight and an interaction, solved by the workers per group
    of columns in the same eigenbases: the in-memory answer, shared rows exactly equal."""
    frame = frame_for(rng).assign(z=rng.normal(size=300))
    spec = ("response y ~ logistic\nfeatures x by (g weight 2), z shared, intercept by h\n"
            "regularize 0.1 * sum_squares\nstratify g ~ cycle weight 1 nodes 0..3\n"
            "stratify h ~ path weight 0.5 nodes 0..2\ninteract g * h weight 3\n")
    local, remote = both(spec, frame, client)
    assert remote.objective.total == pytest.approx(local.objective.total, rel=1e-7)
    np.testing.assert_allclose(remote.theta_array, local.theta_array, atol=1e-6)
    theta = remote.theta_array[:, :, 0].reshape(4, 3, 3)
    assert np.all(theta[..., 0] == theta[:, :1, 0])  # x: by g only
    assert np.all(theta[..., 1] == theta[0, 0, 1])  # z: shared
    assert np.all(theta[..., 2] == theta[:1, :, 2])  # intercept: by h only


def test_rows_constant_along_a_disconnected_factor_are_left_to_admm(client, rng, tmp_path):
    (tmp_path / "g.csv").write_text("source,target\n0,1\n2,3\n")
    spec = tmp_path / "m.strat"
    spec.write_text("response y ~ logistic\nfeatures x by h, intercept\n"
                    'stratify g ~ edges("g.csv") nodes 0..3\nstratify h ~ path nodes 0..2\n')
    with pytest.raises(stratlang.NumericalError) as err:
        stratlang.load(spec).fit(frame_for(rng), backend="dask",
                                 options={"scheduler": client})
    assert str(err.value) == (
        "backend 'dask' cannot fit model 'm': parameter rows differ in their graph terms "
        "(`by`, `shared`, an own weight, `interact`) and a row constant along a factor whose "
        "graph is not connected (its constant mode is not one eigenvector): the admm backend "
        "fits the model on one machine; use backend='admm'")


def test_dask_answers_with_admms_best_copy_and_states_its_accuracy(client):
    """Large non-smooth penalties: the loss copy sits 5e-6 (relative) above the optimum at
    the default tolerances, where the l1 term's own copy (exact zeros) is; Dask answered
    with the loss copy, ADMM with the best (one shared rule now chooses for both)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"g": rng.integers(0, 5, 300)})
    for i in range(4):
        frame[f"x{i}"] = rng.normal(size=300)
    frame["yb"] = (rng.random(300) < 1 / (1 + np.exp(-frame.x0))).astype(int)
    model = stratlang.load("response yb ~ logistic\nfeatures x0, x1, x2, x3, intercept\n"
                           "regularize 50 * l1\nstratify g ~ path weight 5\n")
    reference = model.fit(frame, backend="cvxpy")
    local = model.fit(frame, backend="admm")
    remote = model.fit(frame, backend="dask", options={"scheduler": client})
    assert remote.info["copy"] == local.info["copy"] == "l1 term"
    assert remote.objective.total == pytest.approx(local.objective.total, rel=1e-10)
    assert remote.objective.total == pytest.approx(reference.objective.total, rel=1e-9)
    for key in ("objective_spread", "objective_accuracy"):
        assert remote.info[key] == pytest.approx(local.info[key], rel=1e-6), key
    assert 0 < remote.info["objective_spread"] <= remote.info["objective_accuracy"]


def test_an_unbounded_objective_is_said_to_be_unbounded_on_dask(client, rng):
    frame = pd.DataFrame({"g": rng.integers(0, 2, 40), "x": rng.normal(size=40), "u": 0.0})
    frame["y"] = rng.exponential(1.0, 40)
    frame.loc[3, ["u", "y"]] = [1.0, 0.0]  # u is nonzero only where y = 0
    model = stratlang.load("response y ~ exponential_regression\nfeatures x, u, intercept\n"
                           "stratify g ~ path weight 1\n")
    with pytest.raises(stratlang.NumericalError) as info:
        model.fit(frame, backend="dask", options={"scheduler": client, "max_iter": 100})
    assert str(info.value) == (
        "backend 'dask': the objective is unbounded below: moving u (in 2 of 2 strata) "
        "lowers the loss of the records in row 3 without end, and nothing else in the model "
        "resists (loss 'exponential_regression' falls without bound there); add a "
        "regularizer on those parameters or drop the feature")
