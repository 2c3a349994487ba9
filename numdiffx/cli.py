"""``numdiffx`` command line: thin -- parses, calls numdiffx.studies, prints."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from collections.abc import Sequence
from typing import TextIO

_DELTA_PROBLEMS = {"mlp-relu": "relu", "mlp-tanh": "tanh"}
_TIMING_PROBLEMS = ("two", "add", "mul", "mlp")
_BACKENDS = ("numpy", "torch", "jax")


class Progress:
    """Progress of a long study on ``stream`` (stderr by default).

    On a terminal: one redrawn line. Otherwise (a pipe, CI, a log file): one plain line
    per finished block of ``block`` steps, so a run is never silent for minutes.
    """

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30,
                 block: int = 1) -> None:
        self.total, self.done, self.width = max(total, 1), 0, width
        self.block = max(block, 1)
        self.stream = sys.stderr if stream is None else stream
        self.active = self.stream.isatty()
        self.start = time.perf_counter()

    def __call__(self, label: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        if not self.active:
            if self.done % self.block == 0 or self.done == self.total:
                self.stream.write(f"[{self.done}/{self.total}] {elapsed:.0f}s {label}\n")
                self.stream.flush()
            return
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(frac * self.width)
        self.stream.write(f"\r[{bar:<{self.width}}] {self.done}/{self.total} "
                          f"{elapsed:5.0f}s {label[:40]:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.active:
            self.stream.write("\r" + " " * (self.width + 60) + "\r")
            self.stream.flush()


def _missing_plot_dependency(path: str | None) -> bool:
    """True (after a one-line message) when ``--plot`` is asked for without matplotlib.

    Checked before the study starts, not after minutes of work."""
    import importlib.util

    if path is None or importlib.util.find_spec("matplotlib") is not None:
        return False
    print(f"numdiffx: --plot {path} needs matplotlib, which is not installed: "
          "pip install 'numdiffx[plot]' (or drop --plot).", file=sys.stderr)
    return True


def _parser() -> argparse.ArgumentParser:
    from numdiffx.studies._report import REPORT as _CITATION

    parser = argparse.ArgumentParser(
        prog="numdiffx", description="numdiffx studies and tools",
        epilog=f"The studies reproduce and extend the report '{_CITATION}'.")
    sub = parser.add_subparsers(dest="command", required=True)
    study = sub.add_parser("study", help="run a reproducible study")
    kinds = study.add_subparsers(dest="study", required=True)

    delta = kinds.add_parser(
        "delta", help="Jacobian error vs step on the 5-128-128-128-5 MLP of the report "
        "(Hendrata 2024, JacrevFinite; its Figure 1)",
        description="Jacobian error vs finite-difference step on the 5-128-128-128-5 MLP of "
        f"the report '{_CITATION}' (reproduces its Figure 1 and extends it).")
    delta.add_argument("--problem", action="append", choices=sorted(_DELTA_PROBLEMS),
                       help="repeatable; default both")
    delta.add_argument("--activation", action="append", choices=["relu", "tanh"],
                       help="alias of --problem mlp-ACTIVATION")
    delta.add_argument("--dtype", action="append", choices=["float64", "float32"],
                       help="repeatable; default both")
    delta.add_argument("--method", action="append",
                       choices=["forward", "backward", "central", "complex_step"],
                       help="repeatable; default forward, backward, central "
                       "(complex_step: tanh only)")
    delta.add_argument("--backend", default="numpy", choices=_BACKENDS,
                       help="where the network runs (same weights); default numpy")
    delta.add_argument("--rows", type=int, default=100, help="input rows (default 100)")
    delta.add_argument("--dense", action="store_true",
                       help="evaluate as JacrevFinite does, one perturbed copy of the whole "
                       "input per element (same errors, ~100x the work)")
    delta.add_argument("--json", metavar="PATH", help="also write the records as JSON")
    delta.add_argument("--plot", metavar="PATH", help="also write a PNG (needs matplotlib)")

    timing = kinds.add_parser(
        "timing", help="Jacobian wall time and error per backend x method x size (the "
        "report's section 5.2)",
        description="Jacobian wall time and error of autodiff, the JacrevFinite algorithm and "
        f"numdiffx, on the cases of the report '{_CITATION}' (section 5.2) and its MLP.")
    timing.add_argument("--problem", action="append", choices=_TIMING_PROBLEMS,
                        help="repeatable; default all")
    timing.add_argument("--backend", action="append", choices=(*_BACKENDS, "cupy"),
                        help="repeatable; default every installed one")
    timing.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    timing.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="where the arrays live: cuda times torch CUDA, jax's GPU and "
                             "cupy (default cpu)")
    timing.add_argument("--size", action="append", type=int,
                        help="n of the elementwise cases, repeatable; default 10 100 1000")
    timing.add_argument("--rows", action="append", type=int,
                        help="input rows of the mlp case, repeatable; default 1 10 100")
    timing.add_argument("--repeats", type=int, default=3,
                        help="timed runs after a warm-up (the minimum is shown); default 3")
    timing.add_argument("--json", metavar="PATH",
                        help="also write times and errors as JSON")
    timing.add_argument("--plot", metavar="PATH", help="also write a PNG (needs matplotlib)")
    return parser


def _write_json(path: str, study: str, records: Sequence[object], **settings: object) -> None:
    from numdiffx.studies._machine import study_document

    with open(path, "w") as fh:
        json.dump(study_document(study, records, **settings), fh, indent=1)
    print(f"records written to {path}")


def _delta(args: argparse.Namespace) -> int:
    from numdiffx.studies import DEFAULT_DELTAS, REPORT, delta_sweep, format_table
    from numdiffx.studies._networks import backend_available
    from numdiffx.studies.delta import (
        REPRODUCTION_NOTE,
        _extra_steps,
        complex_step_valid,
        figure1_finding,
    )

    if _missing_plot_dependency(args.plot):
        return 2
    if not backend_available(args.backend):
        print(f"backend {args.backend!r} is not installed: skipped (pip install "
              f"'numdiffx[{args.backend}]').", file=sys.stderr)
        return 0
    acts = [_DELTA_PROBLEMS[p] for p in args.problem or []] + list(args.activation or [])
    activations = tuple(dict.fromkeys(acts)) or ("relu", "tanh")
    dtypes = tuple(args.dtype or ("float64", "float32"))
    # complex step is opt-in on the CLI: complex GEMMs would double the default run time
    methods = tuple(args.method or ("forward", "backward", "central"))
    per = len(DEFAULT_DELTAS) + len(_extra_steps(True))
    total = len(dtypes) * per * sum(m != "complex_step" or complex_step_valid(a)
                                    for a in activations for m in methods)
    bar = Progress(total, block=per)  # piped: a line per (network, dtype, method) block
    t0 = time.perf_counter()
    records = delta_sweep(activations=activations, dtypes=dtypes, methods=methods,
                          backend=args.backend, rows=args.rows, dense=args.dense, progress=bar)
    bar.close()
    how = ("dense, one perturbed copy of the whole input per element, as JacrevFinite"
           if args.dense else "per-sample pattern: the rows are independent, so one "
           "perturbation moves a column of every row")
    print(f"numdiffx delta study: the 5-128-128-128-5 MLP of the report '{REPORT}', "
          f"input ({args.rows}, 5), batched Jacobian on {args.backend} ({how}) vs the exact "
          "analytic one")
    print(format_table(records))
    print("\n'auto' is numdiffx's default step rule: c * eps**(1/(p+1)) * max(|x|, 1), "
          "c the stencil's error-balancing constant; 'adaptive' is nd.steps.adaptive().\n"
          "'x+h==x' marks steps below the input's float resolution: numdiffx returns NaN with "
          "status STEP_TOO_SMALL there instead of a silent zero.\n")
    print(textwrap.fill(REPRODUCTION_NOTE, 92))
    finding = figure1_finding(records)
    if finding:
        print(textwrap.fill(finding, 92))
    print(f"({len(records)} Jacobians in {time.perf_counter() - t0:.1f} s)")
    if args.json:
        _write_json(args.json, "delta", records, rows=args.rows, backend=args.backend,
                    dense=args.dense)
    if args.plot:
        from numdiffx.studies.plot import plot_delta

        plot_delta(records, args.plot)
        print(f"figure written to {args.plot}")
    return 0


def _timing(args: argparse.Namespace) -> int:
    from numdiffx.studies._networks import backend_available
    from numdiffx.studies.timing import (
        CASES,
        DEFAULT_MLP_ROWS,
        DEFAULT_SIZES,
        REPRODUCTION_NOTE,
        count_measurements,
        format_timing,
        timing,
    )

    if _missing_plot_dependency(args.plot):
        return 2
    default = (*_BACKENDS[1:], "cupy") if args.device == "cuda" else _BACKENDS
    backends = args.backend or [b for b in default if backend_available(b)]
    for b in [b for b in backends if not backend_available(b)]:
        print(f"backend {b!r} is not installed: skipped.", file=sys.stderr)
    backends = [b for b in backends if backend_available(b)]
    cases = tuple(args.problem or CASES)
    sizes = tuple(args.size or DEFAULT_SIZES)
    rows = tuple(args.rows or DEFAULT_MLP_ROWS)
    bar = Progress(count_measurements(backends, cases, sizes, rows), block=10)
    records = timing(backends=backends, cases=cases, sizes=sizes, mlp_rows=rows,
                     dtype=args.dtype, repeats=args.repeats, progress=bar, device=args.device)
    bar.close()
    print(f"numdiffx timing study ({args.repeats} timed runs per cell after one warm-up; "
          "the minimum is shown, the median is in the JSON)")
    print(format_timing(records))
    print()
    print(textwrap.fill(REPRODUCTION_NOTE, 92))
    if args.json:
        _write_json(args.json, "timing", records, dtype=args.dtype, repeats=args.repeats,
                    sizes=list(sizes), mlp_rows=list(rows), device=args.device)
    if args.plot:
        from numdiffx.studies.plot import plot_timing

        plot_timing(records, args.plot)
        print(f"figure written to {args.plot}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "study" and args.study == "delta":
        return _delta(args)
    if args.command == "study" and args.study == "timing":
        return _timing(args)
    return 2  # pragma: no cover - argparse enforces the choices


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
