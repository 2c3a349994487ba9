"""The one-call GPU check (asv_bench/gpu/run.sh) works before a GPU is there: its dry run
hides the GPUs, collects the GPU tests (each skipped with its reason), times on the CPU
and writes one results file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "asv_bench" / "gpu" / "run.sh"


def _dry_run(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], str]:
    out = tmp_path / "results.md"
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=900,
                          env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
                               "PYTHON": sys.executable, "HOME": str(tmp_path)})
    assert out.exists(), done.stdout + done.stderr
    return done, out.read_text()


def _records(text: str) -> list[dict[str, object]]:
    block = re.search(r"### Records \(JSON\).*?```json\n(.*?)\n```", text, re.S)
    assert block is not None
    return json.loads(block.group(1))


def _check(done: subprocess.CompletedProcess[str], text: str, backends: set[str]) -> None:
    assert done.returncode == 0, text
    assert "DRY RUN on the CPU" in text and "## Machine" in text
    tests = re.search(r"## GPU tests: (\d+) passed, (\d+) failed, (\d+) skipped", text)
    assert tests is not None, text
    passed, failed, skipped = (int(g) for g in tests.groups())
    assert passed == 0 and failed == 0 and skipped > 0  # every GPU test skipped...
    # ... each with its reason (a library that is not installed is skipped as such)
    assert "torch has no CUDA device here" in text or not _installed("torch")
    assert "jax has no gpu device here" in text or not _installed("jax")
    assert re.search(r"SKIPPED \[\d+\] .*cupy", text)
    records = _records(text)
    assert {r["backend"] for r in records} == backends
    assert records and all(r["status"] == "ok" and r["device"] == "cpu" for r in records)
    assert text.rstrip().splitlines()[-1].startswith("PASS")


def test_dry_run_writes_one_results_file(tmp_path):
    """Quick: one test module's GPU parameters and the numpy timing at n = 10."""
    done, text = _dry_run(tmp_path, "--tests", "tests/test_devices.py::test_empty_input_on_the_device",
                          "--backend", "numpy", "--size", "10", "--rows", "1", "--repeats", "1")
    _check(done, text, {"numpy"})


@pytest.mark.slow
def test_dry_run_of_the_whole_suite(tmp_path):
    """The whole suite's GPU parameters and every installed CPU backend's timing."""
    backends = {"numpy"} | {b for b in ("torch", "jax") if _installed(b)}
    args = ["--size", "10", "--rows", "1", "--repeats", "1"]
    for b in sorted(backends):
        args += ["--backend", b]
    done, text = _dry_run(tmp_path, *args)
    _check(done, text, backends)


@pytest.mark.slow
def test_gpu_mode_where_there_is_no_gpu_fails_and_says_so(tmp_path):
    """Without --dry-run on a machine with no GPU nothing is verified: exit status 1."""
    if not _installed("torch"):
        pytest.skip("needs torch (a GPU backend to time)")
    out = tmp_path / "results.md"
    done = subprocess.run(["bash", str(SCRIPT), "--out", str(out), "--tests",
                           "tests/test_devices.py::test_empty_input_on_the_device",
                           "--backend", "torch", "--size", "10", "--rows", "1", "--repeats", "1"],
                          capture_output=True, text=True, timeout=900,
                          env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
                               "PYTHON": sys.executable, "HOME": str(tmp_path),
                               "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"})
    text = out.read_text()
    assert done.returncode == 1, text
    assert "(GPU)" in text and "NOTHING RAN ON A GPU" in text
    assert "skipped: torch has no CUDA device here" in text
    assert text.rstrip().splitlines()[-1].startswith("FAIL")


def _installed(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


def test_timing_on_cuda_without_a_gpu_says_why():
    """The study's device='cuda' records a skip with its reason where there is no GPU."""
    from numdiffx.studies.timing import timing

    recs = timing(backends=("numpy",), cases=("two", "mlp"), sizes=(3,), mlp_rows=(1,),
                  repeats=1, device="cuda")
    assert [r.status for r in recs] == ["skipped: numpy has no GPU arrays"] * 2
    if _installed("torch"):
        import torch

        if not torch.cuda.is_available():
            recs = timing(backends=("torch",), cases=("two",), sizes=(3,), repeats=1,
                          device="cuda")
            assert [r.status for r in recs] == ["skipped: torch has no CUDA device here"]
    with pytest.raises(ValueError, match="device='tpu' is not known"):
        timing(backends=("numpy",), cases=("two",), sizes=(3,), repeats=1, device="tpu")
