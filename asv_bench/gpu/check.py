"""The one-call GPU check: the CUDA and cupy tests and the timing study, one results file.

Run it through ``asv_bench/gpu/run.sh`` (see ``docs/backends.md``, "Verified where"):

    asv_bench/gpu/run.sh                 # on a GPU machine: README install + cupy
    asv_bench/gpu/run.sh --dry-run       # anywhere: the same steps on the CPU

Three steps, each a subprocess with its share of an overall time budget (default 8
minutes), so a hung driver or a slow cell cannot take the others with it:

1. the machine: Python, platform, ``nvidia-smi -L``, library versions, the GPUs torch,
   jax and cupy see;
2. the tests whose backend is a GPU (``-k`` selects the ``xb`` and ``device_xb``
   fixtures' ``torch_cuda``, ``cupy`` and ``jax_gpu`` parameters over the whole suite,
   and the CUDA tests named so), with ``-rs`` so every skip says why;
3. the timing study (``numdiffx study timing``) on ``--device cuda``: torch CUDA, jax's GPU
   and cupy, one subprocess per backend.

``--dry-run`` hides every GPU (``CUDA_VISIBLE_DEVICES=""``, ``JAX_PLATFORMS=cpu``): the
same GPU tests are collected and each is skipped with its reason, and the timing study runs
on the CPU. Everything lands in ONE markdown file (``--out``; default
``gpu-check-<UTC time>.md`` in ``$OUT`` when set, else the current directory). The exit
status is 0 when no test failed and every step finished in its time (and, outside a dry
run, some test passed and some timing cell was measured on the GPU: a machine where every
GPU test skips verifies nothing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# the GPU parameters of the backend fixtures (not the doctest of the cupy adapter module)
GPU_TESTS = "(torch_cuda or cupy or jax_gpu) and not test_docstring_examples"
GPU_BACKENDS = ("torch", "jax", "cupy")
CPU_BACKENDS = ("numpy", "torch", "jax")

_MACHINE = r"""
import importlib.metadata as md, json, platform, shutil, subprocess, sys
info = {"python": sys.version.split()[0], "platform": platform.platform()}
for name in ("numpy", "array-api-compat", "torch", "jax", "jaxlib", "cupy-cuda12x", "cupy",
             "numdiffx"):
    try:
        info[name] = md.version(name)
    except md.PackageNotFoundError:
        pass
smi = shutil.which("nvidia-smi")
info["nvidia-smi -L"] = (subprocess.run([smi, "-L"], capture_output=True, text=True,
                                       timeout=30).stdout.strip() if smi else "not found")
try:
    import torch
    info["torch.cuda"] = ([torch.cuda.get_device_name(i) for i in
                           range(torch.cuda.device_count())] if torch.cuda.is_available()
                          else "no CUDA device")
except Exception as exc:
    info["torch.cuda"] = f"{type(exc).__name__}: {exc}"
try:
    import jax
    info["jax.devices()"] = [str(d) for d in jax.devices()]
except Exception as exc:
    info["jax.devices()"] = f"{type(exc).__name__}: {exc}"
try:
    import cupy
    info["cupy GPUs"] = cupy.cuda.runtime.getDeviceCount()
except Exception as exc:
    info["cupy GPUs"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(info))
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asv_bench/gpu/run.sh", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true",
                   help="hide the GPUs: every GPU test is collected and skipped with its "
                        "reason, and the timing study runs on the CPU")
    p.add_argument("--out", metavar="PATH", help="the results file (markdown)")
    p.add_argument("--budget", type=float, default=480.0,
                   help="seconds for everything (default 480: 8 minutes)")
    p.add_argument("--tests", nargs="+", default=["tests"],
                   help="test paths (default: the whole suite, GPU parameters selected)")
    p.add_argument("--backend", action="append", choices=(*CPU_BACKENDS, "cupy"),
                   help="timing backends, repeatable (default: torch, jax, cupy on the GPU; "
                        "numpy, torch, jax in a dry run)")
    p.add_argument("--size", action="append", type=int, help="timing sizes n (repeatable)")
    p.add_argument("--rows", action="append", type=int, help="timing MLP rows (repeatable)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per cell (default 3)")
    return p


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int | None, str, float]:
    """(exit status or None on timeout, stdout + stderr, seconds)."""
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=max(timeout, 1.0))
        return done.returncode, done.stdout + done.stderr, time.perf_counter() - t0
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"") + (exc.stderr or b"")
        text = out.decode(errors="replace") if isinstance(out, bytes) else out
        return None, text + f"\n[stopped after {timeout:.0f} s]", time.perf_counter() - t0


def _tail(text: str, lines: int = 150) -> str:
    kept = text.rstrip().splitlines()
    return "\n".join((["[...]"] if len(kept) > lines else []) + kept[-lines:])


def _counts(summary: str) -> dict[str, int]:
    """pytest's last line, e.g. '3 passed, 120 skipped, 9000 deselected in 5.1s'."""
    return {word: int(n) for n, word in re.findall(
        r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)", summary)}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    start = time.perf_counter()
    deadline = start + args.budget
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else Path(os.environ.get("OUT", ".")) / (
        f"gpu-check-{stamp}.md")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    if args.dry_run:  # the same steps with every GPU hidden
        env["CUDA_VISIBLE_DEVICES"] = ""
        env["JAX_PLATFORMS"] = "cpu"
    device = "cpu" if args.dry_run else "cuda"
    mode = "DRY RUN on the CPU (GPUs hidden)" if args.dry_run else "GPU"
    sections = [f"# numdiffx GPU check, {stamp} ({mode})", "",
                f"Command: `asv_bench/gpu/run.sh {' '.join(argv or sys.argv[1:])}`", ""]
    ok = True

    def left(reserve: float) -> float:
        return deadline - time.perf_counter() - reserve

    # 1. the machine
    code, text, _ = _run([sys.executable, "-c", _MACHINE], env, min(60.0, left(0)))
    try:
        machine = json.loads(text.strip().splitlines()[-1])
        sections += ["## Machine", "", *[f"- {k}: {v}" for k, v in machine.items()], ""]
    except (ValueError, IndexError):
        sections += ["## Machine", "", "```text", _tail(text, 40), "```", ""]

    # 2. the GPU tests (more than half of what is left: the timing study gets the rest)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
           "-k", GPU_TESTS, *args.tests]
    code, text, secs = _run(cmd, env, left(0) * 0.6)
    counts = _counts(text.strip().splitlines()[-1] if text.strip() else "")
    failed = counts.get("failed", 0) + counts.get("errors", 0) + counts.get("error", 0)
    finished = code in (0, 5) or (code == 1 and failed > 0)
    ok &= code in (0, 5)  # 5: nothing selected (no GPU test in these paths)
    verdict = ("stopped: out of time" if code is None else
               f"{counts.get('passed', 0)} passed, {failed} failed, "
               f"{counts.get('skipped', 0)} skipped (exit status {code})")
    sections += [f"## GPU tests: {verdict}, {secs:.0f} s", "",
                 f"`{' '.join(cmd[1:])}`", "", "```text", _tail(text), "```", ""]

    # 3. the timing study, one backend at a time (each its share of what is left)
    backends = args.backend or list(CPU_BACKENDS if args.dry_run else GPU_BACKENDS)
    sections += [f"## Timing study on {device}", ""]
    records: list[dict[str, object]] = []
    for i, backend in enumerate(backends):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "timing.json"
            cmd = [sys.executable, "-m", "numdiffx.cli", "study", "timing", "--device", device,
                   "--backend", backend, "--repeats", str(args.repeats), "--json", str(path)]
            for n in args.size or ():
                cmd += ["--size", str(n)]
            for r in args.rows or ():
                cmd += ["--rows", str(r)]
            code, text, secs = _run(cmd, env, left(10.0) / (len(backends) - i))
            if path.exists():
                records += json.loads(path.read_text()).get("records", [])
        ok &= code == 0
        state = "stopped: out of time" if code is None else f"exit status {code}"
        sections += [f"### {backend} ({state}, {secs:.0f} s)", "", "```text", _tail(text, 80),
                     "```", ""]
    timed = [r for r in records if r.get("status") == "ok"]
    where = sorted({str(r.get("device")) for r in timed})
    sections += ["### Records (JSON)", "",
                 f"{len(timed)} measured, {len(records) - len(timed)} skipped; devices "
                 f"measured on: {', '.join(where) or 'none'}", "", "```json",
                 json.dumps(records, indent=None, separators=(",", ":")), "```", ""]
    if not args.dry_run and not (counts.get("passed", 0) and timed):
        ok = False  # nothing ran on a GPU: no verification, whatever skipped
        verdict += "; NOTHING RAN ON A GPU (see the skip reasons)"
    sections += ["## Verdict", "",
                 f"{'PASS' if ok and finished else 'FAIL'}: tests {verdict}; timing "
                 f"{len(timed)} cells on {', '.join(where) or 'nothing'}; "
                 f"{time.perf_counter() - start:.0f} s of {args.budget:.0f} s.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(sections))
    print(f"results written to {out}")
    return 0 if ok and finished else 1


if __name__ == "__main__":
    sys.exit(main())
