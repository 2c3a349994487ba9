"""False alarms and caught bugs: numdiffx's checkers vs torch's and jax's own.

``nd.gradcheck``/``nd.gradgradcheck``/``nd.check_grads`` next to
``torch.autograd.gradcheck``/``gradgradcheck`` and ``jax.test_util.check_grads`` on the
same corpus. Like with like: the same samples, each checker with its
own defaults, slow and fast mode.

- False alarms: a correct operator (torch's or jax's own derivative) that the checker
  rejects -- by returning False or by crashing.
- Bugs caught: the same operators with an injected backward bug (see
  ``_gradcheck_corpus.py``) that the checker rejects.

Run: ``python asv_bench/compare/gradcheck_corpus_nd_vs_frameworks.py [--points N]``
(N seeded points per operator, default 2). Prints the tables and the time per checker;
takes a few minutes on one core.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _gradcheck_corpus as corpus  # noqa: E402

import numdiffx as nd  # noqa: E402


@dataclass
class Tally:
    """Outcomes per checker: how many samples it rejected, and which."""

    checked: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    which: dict[str, list[str]] = field(default_factory=dict)

    def add(self, checker: str, sample: str, rejected: bool, seconds: float) -> None:
        self.checked[checker] += 1
        self.rejected[checker] += rejected
        self.seconds[checker] += seconds
        if rejected:
            self.which.setdefault(checker, []).append(sample)


def _rejects(run: Callable[[], Any]) -> tuple[bool, float, str]:
    """(rejected, seconds, reason): False/GradcheckError/AssertionError/crash reject."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ok = run()
            reason = "" if ok is not False else "returned False"
            rejected = ok is False
        except AssertionError as exc:  # GradcheckError (nd and torch), jax's check_grads
            rejected, reason = True, str(exc).splitlines()[0] if str(exc) else "assert"
        except Exception as exc:  # a crash rejects a correct function too
            rejected, reason = True, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return rejected, time.perf_counter() - start, reason


def torch_checkers(second_order: bool) -> dict[str, Callable[..., Any]]:
    import torch

    if second_order:
        return {
            "nd slow": lambda f, x: nd.gradgradcheck(f, x, raise_exception=False),
            "nd fast": lambda f, x: nd.gradgradcheck(f, x, fast_mode=True,
                                                     raise_exception=False),
            "torch slow": lambda f, x: torch.autograd.gradgradcheck(f, x,
                                                                   raise_exception=False),
            "torch fast": lambda f, x: torch.autograd.gradgradcheck(f, x, fast_mode=True,
                                                                   raise_exception=False),
        }
    return {
        "nd slow": lambda f, x: nd.gradcheck(f, x, raise_exception=False),
        "nd fast": lambda f, x: nd.gradcheck(f, x, fast_mode=True, raise_exception=False),
        "torch slow": lambda f, x: torch.autograd.gradcheck(f, x, raise_exception=False),
        "torch fast": lambda f, x: torch.autograd.gradcheck(f, x, fast_mode=True,
                                                           raise_exception=False),
    }


def jax_checkers(order: int, modes: Sequence[str]) -> dict[str, Callable[..., Any]]:
    from jax.test_util import check_grads

    return {
        f"nd check_grads order {order}": lambda f, x: nd.check_grads(f, x, order, modes),
        f"jax check_grads order {order}": lambda f, x: check_grads(f, x, order, modes),
    }


def has_double_backward(sample: corpus.Sample) -> bool:
    """Whether torch can differentiate the operator's backward at all (else no gradgrad)."""
    import torch

    xs = sample.make()
    try:
        out = sample.f(*xs)
        go = torch.ones_like(out)
        grads = torch.autograd.grad(out, xs, go, create_graph=True, allow_unused=True)
        used = [g for g in grads if g is not None and g.requires_grad]
        if not used:
            return False
        torch.autograd.grad(sum((g.real if g.is_complex() else g).sum() for g in used), xs,
                            allow_unused=True)
    except (RuntimeError, NotImplementedError):
        return False
    return True


def evaluate(samples: Sequence[corpus.Sample], checkers: dict[str, Callable[..., Any]],
             tally: Tally | None = None, reasons: dict[str, str] | None = None,
             warmup: bool = False) -> Tally:
    """Run every checker on every sample; ``reasons`` collects why each was rejected.
    ``warmup``: run each checker once untimed first (jax compiles each new operation on
    first use, and whichever checker ran first would pay for both)."""
    tally = tally or Tally()
    for sample in samples:
        for name, run in checkers.items():
            def call(run: Callable[..., Any] = run, sample: corpus.Sample = sample) -> Any:
                return run(sample.f, sample.make())

            if warmup:
                _rejects(call)
            rejected, seconds, reason = _rejects(call)
            tally.add(name, sample.name, rejected, seconds)
            if rejected and reasons is not None:
                reasons[f"{name}: {sample.name}"] = reason
    return tally


def with_bugs(samples: Sequence[corpus.Sample], bugs: Sequence[str], inject: Callable[..., Any]
              ) -> dict[str, list[corpus.Sample]]:
    """{bug: the samples where it changes the derivative, with the bug injected}."""
    result: dict[str, list[corpus.Sample]] = {bug: [] for bug in bugs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for bug in bugs:
            for s in samples:
                try:
                    buggy = inject(s, bug)
                except (RuntimeError, NotImplementedError):  # no such derivative to break
                    continue
                if buggy is not None:
                    result[bug].append(buggy)
    return result


def _line(title: str, tally: Tally, names: Sequence[str]) -> str:
    cells = "  ".join(f"{n}: {tally.rejected[n]}/{tally.checked[n]}" for n in names)
    return f"  {title:<34} {cells}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2, help="seeded points per operator")
    parser.add_argument("--verbose", action="store_true", help="list every rejection")
    args = parser.parse_args(argv)
    import jax
    import torch

    jax.config.update("jax_enable_x64", True)
    torch.set_num_threads(1)
    t_samples = corpus.torch_samples(args.points)
    j_samples = corpus.jax_samples(args.points)
    twice = [s for s in t_samples if has_double_backward(s)]
    print(f"corpus: {len(t_samples)} torch samples ({len(twice)} with a double backward), "
          f"{len(j_samples)} jax samples; float64/complex128")
    reasons: dict[str, str] = {}
    first = evaluate(t_samples, torch_checkers(False), reasons=reasons)
    second = evaluate(twice, torch_checkers(True), reasons=reasons)
    jax1 = evaluate(j_samples, jax_checkers(1, ("fwd", "rev")), reasons=reasons, warmup=True)
    jax2 = evaluate(j_samples, jax_checkers(2, ("fwd", "rev")), reasons=reasons, warmup=True)
    names = ["nd slow", "nd fast", "torch slow", "torch fast"]
    print("\nFALSE ALARMS on correct operators (rejected/checked; lower is better):")
    print(_line("gradcheck", first, names))
    print(_line("gradgradcheck", second, names))
    print(_line("check_grads order 1 (fwd, rev)", jax1, list(jax1.checked)))
    print(_line("check_grads order 2 (fwd, rev)", jax2, list(jax2.checked)))

    print("\nINJECTED BUGS caught (caught/injected; higher is better):")
    bugs = with_bugs(t_samples, corpus.BUGS, corpus.torch_bug)
    total = Tally()
    for bug, buggy in bugs.items():
        tally = evaluate(buggy, torch_checkers(False), reasons=reasons if args.verbose else None)
        print(_line(f"torch gradcheck, {bug}", tally, names))
        for n in names:
            total.checked[n] += tally.checked[n]
            total.rejected[n] += tally.rejected[n]
    print(_line("torch gradcheck, all first-order", total, names))
    double = with_bugs(twice, corpus.DOUBLE_BUGS, corpus.torch_double_bug)
    total2 = Tally()
    for bug, buggy in double.items():
        tally = evaluate(buggy, torch_checkers(True))
        print(_line(f"torch gradgradcheck, {bug}", tally, names))
        for n in names:
            total2.checked[n] += tally.checked[n]
            total2.rejected[n] += tally.rejected[n]
    print(_line("torch gradgradcheck, all", total2, names))
    jbugs = with_bugs(j_samples, corpus.BUGS, corpus.jax_bug)
    jtotal = Tally()
    for bug, buggy in jbugs.items():
        tally = evaluate(buggy, jax_checkers(1, ("rev",)))
        print(_line(f"jax check_grads (rev), {bug}", tally, list(tally.checked)))
        for n in tally.checked:
            jtotal.checked[n] += tally.checked[n]
            jtotal.rejected[n] += tally.rejected[n]
    print(_line("jax check_grads (rev), all", jtotal, list(jtotal.checked)))

    print("\nTIME per checker on the correct samples (s):")
    for tally, label in ((first, "gradcheck"), (second, "gradgradcheck"), (jax1, "order 1"),
                         (jax2, "order 2")):
        print(f"  {label:<14} " + "  ".join(f"{n}: {tally.seconds[n]:.1f}"
                                          for n in tally.checked))
    print("\nREJECTED CORRECT SAMPLES:")
    for tally in (first, second, jax1, jax2):
        for name, which in tally.which.items():
            for s in which:
                print(f"  {name}: {s}: {reasons.get(f'{name}: {s}', '')[:200]}")
    if args.verbose:
        print("\nBUGS MISSED BY NUMDIFFX:")
        for buggy in bugs.values():
            for s in buggy:
                for n in ("nd slow", "nd fast"):
                    if f"{n}: {s.name}" not in reasons:
                        print(f"  {n} missed {s.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
