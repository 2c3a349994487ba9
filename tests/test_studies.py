"""The delta and timing studies and their CLI (tiny sizes; no timing assertions)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import numdiffx as nd
from numdiffx.cli import main
from numdiffx.studies import DeltaRecord, delta_sweep, kink_counts, make_mlp
from numdiffx.studies.timing import jacrev_finite, timing


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


def test_delta_sweep_adds_adaptive_rows_when_the_rule_exists(monkeypatch):
    import numdiffx.steps

    monkeypatch.setattr(numdiffx.steps, "adaptive", lambda: nd.steps.auto(), raising=False)
    recs = delta_sweep(activations=("tanh",), dtypes=("float64",), methods=("central",),
                       deltas=(1e-5,), rows=3)
    assert [r.delta for r in recs] == [1e-5, "auto", "adaptive"]


def test_jacrev_finite_baseline_matches_exact():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    jx, jy = jacrev_finite(lambda a, b: a * b, x, y, argnums=(0, 1))
    np.testing.assert_allclose(jx, np.diag(y), atol=1e-5)
    np.testing.assert_allclose(jy, np.diag(x), atol=1e-5)


def test_timing_on_numpy_returns_baseline_and_numdiffx_modes():
    recs = timing(backends=("numpy",), cases=("two", "mul", "mlp"), sizes=(3,), mlp_rows=(2,),
                  repeats=1)
    methods = {r.method for r in recs}
    assert {"jacrevfinite", "numdiffx[batched]", "numdiffx[loop]", "numdiffx[vmap]"} <= methods
    ok = [r for r in recs if r.status == "ok"]
    assert ok and all(r.median_s > 0 for r in ok)
    vmap = [r for r in recs if r.method == "numdiffx[vmap]"]
    assert all(r.status.startswith("skipped") for r in vmap)  # numpy has no vmap


def test_timing_rejects_unknown_case():
    with pytest.raises(ValueError, match="cases="):
        timing(cases=("nope",))


def test_cli_study_timing_prints_tables_and_json_round_trips(tmp_path, capsys):
    path = tmp_path / "t.json"
    code = main(["study", "timing", "--backend", "numpy", "--problem", "add", "--size", "4",
                 "--repeats", "1", "--json", str(path)])
    out = capsys.readouterr().out
    assert code == 0 and "add on numpy" in out and "jacrevfinite" in out
    from numdiffx.studies.timing import TimingRecord

    back = [TimingRecord(**d) for d in json.loads(path.read_text())]
    assert {r.method for r in back} >= {"jacrevfinite", "numdiffx[batched]"}


def test_cli_study_delta_plot_and_json_round_trip(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png, js = tmp_path / "d.png", tmp_path / "d.json"
    code = main(["study", "delta", "--problem", "mlp-relu", "--dtype", "float64", "--rows", "3",
                 "--method", "central", "--plot", str(png), "--json", str(js)])
    out = capsys.readouterr().out
    assert code == 0 and "kinks crossed" in out and "complex_step: not valid" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [DeltaRecord(**d) for d in json.loads(js.read_text())]
    assert records[0].activation == "relu" and records[-1].delta == "adaptive"
