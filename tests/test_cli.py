"""The CLI main job and the import hygiene of the package."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

import numdiffx as nd
from numdiffx.cli import main
from numdiffx.studies import delta_sweep, make_mlp


def test_import_does_not_import_torch_or_jax():
    code = "import sys, numdiffx; print('torch' in sys.modules, 'jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False False"


def test_version_comes_from_metadata():
    from importlib.metadata import version

    assert nd.__version__ == version("numdiffx")


def test_mlp_analytic_jacobian_matches_complex_step():
    net = make_mlp("tanh")
    x = np.random.default_rng(1).standard_normal((3, 5))
    exact = net.jacobian(x)
    cs = nd.jacobian(net, x, method="complex_step", evaluation="batched")
    np.testing.assert_allclose(cs, exact, atol=1e-14)


def test_delta_study_auto_lands_near_the_best_fixed_delta():
    records = delta_sweep(activations=("tanh",), dtypes=("float64", "float32"),
                          methods=("central",), rows=10)
    for dtype in ("float64", "float32"):
        rows = [r for r in records if r.dtype == dtype]
        fixed = [r for r in rows if not isinstance(r.delta, str) and r.max_error == r.max_error]
        best = min(r.max_error for r in fixed)
        auto = next(r for r in rows if r.delta == "auto")
        assert auto.max_error <= 2.0 * best, (dtype, auto.max_error, best)


def test_cli_study_delta_prints_a_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "records.json"
    code = main(["study", "delta", "--rows", "4", "--activation", "relu", "--dtype", "float32",
                 "--method", "central", "--json", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "relu network, float32" in out and "auto" in out and "x+h==x" in out
    assert "B. Hendrata, 2024" in out  # the report is cited wherever its MLP is named
    records = json.loads(path.read_text())["records"]
    assert {r["method"] for r in records} == {"central"}
    assert len(records) == 12  # ten deltas, auto and adaptive


def test_cli_plot_without_matplotlib_fails_before_the_study(monkeypatch, capsys):
    import importlib.util

    import numdiffx.studies as studies

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))

    def never(*args, **kwargs):
        raise AssertionError("the study ran although --plot cannot be honoured")

    monkeypatch.setattr(studies, "delta_sweep", never)
    for argv in (["study", "delta", "--plot", "d.png"], ["study", "timing", "--plot", "t.png"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "pip install 'numdiffx[plot]'" in err


def test_progress_prints_a_line_per_block_when_piped():
    import io

    from numdiffx.cli import Progress

    stream = io.StringIO()  # not a terminal
    bar = Progress(7, stream=stream, block=3)
    for i in range(7):
        bar(f"step {i}")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["[3/7]", "[6/7]", "[7/7]"]
    assert lines[0].endswith("step 2")


def test_cli_help_cites_the_report(capsys):
    import pytest

    for argv in (["study", "delta", "--help"], ["study", "timing", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = " ".join(capsys.readouterr().out.split())
        assert "JacrevFinite: Finite Difference approach to replacing PyTorch Autograd" in out
        assert "B. Hendrata, 2024" in out


def test_cli_dense_evaluates_as_jacrevfinite_does(tmp_path, capsys):
    path = tmp_path / "dense.json"
    argv = ["study", "delta", "--rows", "3", "--activation", "tanh", "--dtype", "float64",
            "--method", "forward", "--json", str(path)]
    assert main(argv) == 0
    per_sample = json.loads(path.read_text())["records"]
    assert main([*argv, "--dense"]) == 0
    assert "one perturbed copy of the whole input per element" in capsys.readouterr().out
    dense = json.loads(path.read_text())["records"]
    assert {r["evaluation"] for r in dense} == {"dense"}
    # fixed and auto steps: a copy per input element (3 x 5) against one per column (5)
    assert [d["nfev"] - p["nfev"] for d, p in zip(dense, per_sample)][:2] == [10, 10]
