"""The delta and timing studies and their CLI (tiny sizes; no timing assertions)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from numdiffx.cli import main
from numdiffx.studies import DeltaRecord, delta_sweep, kink_counts, make_mlp
from numdiffx.studies.timing import format_timing, jacrev_finite, timing


def test_delta_sweep_records_have_every_field_and_consistent_errors():
    recs = delta_sweep(activations=("tanh",), dtypes=("float64",),
                       methods=("central", "complex_step"), deltas=(1e-3, 1e-6), rows=4)
    assert {f.name for f in dataclasses.fields(DeltaRecord)} <= set(recs[0].as_dict())
    assert [(r.method, r.delta) for r in recs] == [
        ("central", 1e-3), ("central", 1e-6), ("central", "auto"), ("central", "adaptive"),
        ("complex_step", 1e-3), ("complex_step", 1e-6), ("complex_step", "auto"),
        ("complex_step", "adaptive")]
    for r in recs:
        assert r.mean_error <= r.block_mean_error <= r.block_max_error == r.max_error
        assert r.nfev > 0 and r.backend == "numpy"
    cs = next(r for r in recs if r.method == "complex_step" and r.delta == 1e-6)
    assert cs.max_error < 1e-13


def test_complex_step_is_skipped_for_relu():
    recs = delta_sweep(activations=("relu",), dtypes=("float64",),
                       methods=("complex_step", "forward"), deltas=(1e-5,), rows=3)
    assert {r.method for r in recs} == {"forward"}


def test_kink_counts_zero_for_tanh_positive_for_relu_at_large_steps():
    x = np.random.default_rng(0).standard_normal((20, 5))
    assert kink_counts(make_mlp("tanh"), x, 1e-1, (-1.0, 1.0)) == (0, 0)
    crossed, inputs = kink_counts(make_mlp("relu"), x, 1e-1, (-1.0, 1.0))
    assert crossed >= inputs > 0
    assert kink_counts(make_mlp("relu"), x, 1e-9, (-1.0, 1.0)) == (0, 0)
    recs = delta_sweep(activations=("relu", "tanh"), dtypes=("float64",), methods=("central",),
                       deltas=(1e-1, 1e-8), include_auto=False, rows=20)
    by = {(r.activation, r.delta): r.kinks_crossed for r in recs}
    assert by[("relu", 1e-1)] > 0 and by[("relu", 1e-8)] == 0
    assert by[("tanh", 1e-1)] == by[("tanh", 1e-8)] == 0


def test_delta_sweep_on_torch_matches_numpy():
    pytest.importorskip("torch")
    kw = dict(activations=("tanh",), dtypes=("float64",), methods=("central",),
              deltas=(1e-5,), include_auto=False, rows=3)
    a, b = delta_sweep(**kw)[0], delta_sweep(backend="torch", **kw)[0]
    assert b.backend == "torch"
    np.testing.assert_allclose(b.max_error, a.max_error, rtol=0.5)


def test_per_sample_evaluation_gives_the_dense_quotients_at_a_fraction_of_the_cost():
    kw = dict(activations=("relu", "tanh"), dtypes=("float64", "float32"),
              methods=("forward", "central"), deltas=(1e-1, 1e-5), rows=6)
    sparse, dense = delta_sweep(**kw), delta_sweep(dense=True, **kw)
    assert len(sparse) == len(dense) == 2 * 2 * 2 * 4
    for a, b in zip(sparse, dense):
        where = f"{a.activation} {a.dtype} {a.method} {a.delta}"
        assert (a.evaluation, b.evaluation) == ("per-sample", "dense")
        assert (a.activation, a.dtype, a.method, a.delta) == (b.activation, b.dtype, b.method,
                                                              b.delta)
        assert a.nfev < b.nfev
        # the network runs on batches of other sizes, so f may round differently (BLAS
        # kernels): errors dominated by round-off agree within a factor 2 (adaptive, whose
        # stopping decisions follow that rounding, within 5) ...
        if a.delta == "adaptive":
            assert 0.2 < a.max_error / b.max_error < 5, where
            continue
        assert (a.kinks_crossed, a.step_median) == (b.kinks_crossed, b.step_median), where
        assert 0.5 < a.max_error / b.max_error < 2, where
        if a.activation == "tanh" and a.dtype == "float64" and a.delta == 1e-1:
            # ... those dominated by truncation to many digits
            np.testing.assert_allclose(a.max_error, b.max_error, rtol=1e-8, err_msg=where)
            np.testing.assert_allclose(a.mean_error, b.mean_error, rtol=1e-8, err_msg=where)


def test_delta_records_name_the_steps_numdiffx_used():
    recs = delta_sweep(activations=("tanh",), dtypes=("float64",), methods=("forward",),
                       deltas=(1e-3,), rows=3)
    fixed, auto, adaptive = recs
    assert fixed.step_min == pytest.approx(1e-3, rel=1e-6)   # (x + h) - x, not exactly h
    assert fixed.step_max == pytest.approx(1e-3, rel=1e-6)
    # forward auto: ~sqrt(eps) * max(|x|, 1), between 1e-8 and 1e-7 at |x| ~ 1
    assert 1e-9 < auto.step_min <= auto.step_median <= auto.step_max < 1e-6
    assert adaptive.step_median > 0 and adaptive.rows == 3


def test_jacrev_finite_is_the_reports_forward_difference_in_one_call():
    calls = []

    def mul(a, b):
        calls.append(a.shape)
        return a * b

    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    jx = jacrev_finite(mul, x, y)
    assert calls == [(4, 3)]  # x and its 3 perturbed copies in ONE batch: n + 1 points
    # forward difference with the report's delta 1e-5: exact here, mul is linear in x
    np.testing.assert_allclose(jx, np.diag(y), atol=1e-10)
    jx, jy = jacrev_finite(lambda a, b: a * b, x, y, argnums=(0, 1))
    np.testing.assert_allclose(jy, np.diag(x), atol=1e-10)
    # truncation error delta * f''/2 of a forward difference
    sq = jacrev_finite(lambda a: a ** 2, x)
    np.testing.assert_allclose(np.diag(sq) - 2 * x, 1e-5, rtol=1e-3)


def test_timing_on_numpy_records_times_and_errors_like_for_like():
    recs = timing(backends=("numpy",), cases=("two", "mul", "mlp"), sizes=(3,), mlp_rows=(2,),
                  repeats=1)
    by = {(r.case, r.method): r for r in recs}
    assert {m for _, m in by} == {"jacrevfinite", "numdiffx forward", "numdiffx central",
                                  "numdiffx default"}
    assert all(r.status == "ok" and r.median_s > 0 and r.device == "cpu" for r in recs)
    assert by[("mlp", "numdiffx central")].inputs == 10
    # the report's fixed delta 1e-5 vs numdiffx's automatic steps on the tanh network
    assert 1e-8 < by[("mlp", "jacrevfinite")].max_error < 1e-4
    assert by[("mlp", "numdiffx forward")].max_error < by[("mlp", "jacrevfinite")].max_error
    assert by[("mlp", "numdiffx central")].max_error < 1e-9


def test_timing_on_torch_times_autodiff_and_checks_its_error():
    pytest.importorskip("torch")
    recs = timing(backends=("torch",), cases=("mlp",), mlp_rows=(2,), repeats=1)
    by = {r.method: r for r in recs}
    assert {"torch.func.jacrev", "torch.func.jacfwd", "torch.autograd.grad"} <= set(by)
    assert all(r.status == "ok" for r in recs)
    assert by["torch.func.jacrev"].max_error < 1e-14
    assert by["torch.autograd.grad"].max_error < 1e-14  # one VJP, checked against ones^T J
    assert by["numdiffx central"].max_error < 1e-9


def test_a_skipped_measurement_keeps_its_whole_reason():
    from numdiffx.studies import make_mlp, network_for
    from numdiffx.studies.timing import _measure, _problem

    reason = ("evaluation='vmap' needs a backend with vmap; numpy has none: pass "
              "evaluation='batched' if f accepts a leading batch axis, else 'loop'.")

    def build(problem):
        def call():
            raise ValueError(reason)
        return call

    net = make_mlp("tanh")
    bnet = network_for(net, "numpy")
    rec = _measure(bnet, "two", 3, "broken", "float64", 1,
                   _problem("two", bnet, net, 3, "float64", 0), build)
    assert rec.status == f"skipped: {reason}"
    assert "skipped: " + reason in format_timing([rec])


def test_timing_rejects_unknown_case():
    with pytest.raises(ValueError, match="cases="):
        timing(cases=("nope",))


def test_cli_study_timing_prints_tables_and_json_round_trips(tmp_path, capsys):
    path = tmp_path / "t.json"
    code = main(["study", "timing", "--backend", "numpy", "--problem", "add", "--size", "4",
                 "--repeats", "1", "--json", str(path)])
    out = capsys.readouterr().out
    assert code == 0 and "add on numpy" in out and "jacrevfinite" in out
    assert "numdiffx forward / jacrevfinite (both forward" in out
    assert "B. Hendrata, 2024" in out
    from numdiffx.studies.timing import TimingRecord

    doc = json.loads(path.read_text())
    assert doc["study"] == "timing" and "Hendrata" in doc["report"]
    assert doc["machine"]["cores"] >= 1 and doc["settings"]["repeats"] == 1
    back = [TimingRecord(**d) for d in doc["records"]]
    assert {r.method for r in back} >= {"jacrevfinite", "numdiffx forward"}
    assert all(r.max_error == r.max_error for r in back)  # errors next to the times


def test_cli_study_delta_plot_and_json_round_trip(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png, js = tmp_path / "d.png", tmp_path / "d.json"
    code = main(["study", "delta", "--problem", "mlp-relu", "--dtype", "float64", "--rows", "3",
                 "--method", "central", "--method", "forward", "--plot", str(png),
                 "--json", str(js)])
    out = capsys.readouterr().out
    assert code == 0 and "kinks crossed" in out and "complex_step: not valid" in out
    assert "Figure 1 setting (relu, float64, forward)" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(js.read_text())
    assert doc["study"] == "delta" and doc["settings"]["rows"] == 3
    records = [DeltaRecord(**d) for d in doc["records"]]
    assert records[0].activation == "relu" and records[-1].delta == "adaptive"


def test_timing_figure_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    from numdiffx.studies.plot import plot_timing

    recs = timing(backends=("numpy",), cases=("two", "mlp"), sizes=(2, 4), mlp_rows=(1, 2),
                  repeats=1)
    fig = plot_timing(recs, str(tmp_path / "t.png"))
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    assert "float64 on CPU" in fig._suptitle.get_text()
    assert [ax.get_title() for ax in fig.axes] == ["two(x) = 2x on numpy",
                                                   "5-128-128-128-5 tanh MLP on numpy"]


def test_timing_figure_draws_bars_when_a_panel_has_one_size(tmp_path):
    pytest.importorskip("matplotlib")
    from numdiffx.studies.plot import plot_timing

    recs = timing(backends=("numpy",), cases=("mlp",), mlp_rows=(2,), repeats=1)
    fig = plot_timing(recs, str(tmp_path / "t.png"))
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "jacrevfinite", "numdiffx forward", "numdiffx central", "numdiffx default"]
    assert len(ax.patches) == 4 and ax.get_xlabel().endswith("= 2")
