"""Targets of the gradient checks, measured in one run (issue 5).

1. Time of ``nd.gradcheck`` vs ``torch.autograd.gradcheck`` on a small conv + MLP model in
   float64, fast mode vs fast mode and slow vs slow (ratio numdiffx / torch; target <= 1).
2. float32: false alarms on CORRECT functions, numdiffx (auto step, per-dtype tolerances)
   vs torch's defaults (eps=1e-6, atol=1e-5, rtol=1e-3).

Run from the repository root: ``python -m benchmarks.checks_targets``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

import numdiffx as nd


def _model(dtype: torch.dtype) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> Any:
        return (0.5 * torch.randn(*shape, generator=gen, dtype=dtype)).requires_grad_(True)

    x, conv_w, lin_w = rand(1, 2, 6, 6), rand(3, 2, 3, 3), rand(4, 48)

    def f(x: Any, conv_w: Any, lin_w: Any) -> Any:
        h = torch.tanh(torch.nn.functional.conv2d(x, conv_w))  # (1, 3, 4, 4)
        return torch.nn.functional.softplus(h.reshape(1, -1) @ lin_w.T)

    return f, (x, conv_w, lin_w)


def _best(fun: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fun()
        times.append(time.perf_counter() - t)
    return min(times)


def timing() -> None:
    f, inputs = _model(torch.float64)
    print("1. gradcheck time on a conv+MLP model, float64 "
          f"({sum(i.numel() for i in inputs)} inputs, 4 outputs), best of 3:")
    for fast in (True, False):
        ours = _best(lambda fast=fast: nd.gradcheck(f, inputs, fast_mode=fast))
        theirs = _best(lambda fast=fast: torch.autograd.gradcheck(f, inputs, fast_mode=fast))
        print(f"   {'fast' if fast else 'slow'} mode: numdiffx {ours * 1e3:8.1f} ms, torch "
              f"{theirs * 1e3:8.1f} ms, ratio {ours / theirs:5.2f} (target <= 1.0)")


def _correct_functions() -> list[tuple[str, Callable[..., Any], tuple[Any, ...]]]:
    gen = torch.Generator().manual_seed(1)
    cases: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = []
    unary = {"tanh": torch.tanh, "sin": torch.sin, "exp": torch.exp,
             "sigmoid": torch.sigmoid, "softplus": torch.nn.functional.softplus,
             "cube": lambda x: x**3, "log1p(x^2)": lambda x: torch.log1p(x * x),
             "x*sin(x)": lambda x: x * torch.sin(x)}
    for name, fun in unary.items():
        for trial in range(3):
            x = (2 * torch.randn(5, generator=gen)).float().requires_grad_(True)
            cases.append((f"{name}#{trial}", fun, (x,)))
    for trial in range(3):
        f, inputs = _model(torch.float32)
        shifted = tuple((i.detach() + 0.1 * trial).requires_grad_(True) for i in inputs)
        cases.append((f"conv+mlp#{trial}", f, shifted))
    return cases


def false_alarms() -> None:
    cases = _correct_functions()
    ours = theirs = 0
    ours_fast = theirs_fast = 0
    for _, f, inputs in cases:
        ours += not nd.gradcheck(f, inputs, raise_exception=False)
        ours_fast += not nd.gradcheck(f, inputs, fast_mode=True, raise_exception=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "not double precision"
            theirs += not torch.autograd.gradcheck(f, inputs, raise_exception=False)
            theirs_fast += not torch.autograd.gradcheck(f, inputs, fast_mode=True,
                                                        raise_exception=False)
    print(f"2. float32 false alarms on {len(cases)} correct functions (lower is better):")
    print(f"   slow mode: numdiffx {ours}/{len(cases)}, torch default eps=1e-6 "
          f"{theirs}/{len(cases)}")
    print(f"   fast mode: numdiffx {ours_fast}/{len(cases)}, torch default eps=1e-6 "
          f"{theirs_fast}/{len(cases)}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    timing()
    false_alarms()
