"""``nd.gradcheck`` vs ``torch.autograd.gradcheck``: time, the FD error estimate's cost.

Also float32 false alarms, all measured in one run.

1. Time on a small conv + MLP model and on a small super-resolution conv net (float64),
   fast mode vs fast mode and slow vs slow (ratio numdiffx / torch; target <= 1.5).
2. The cost of the FD error estimate: evaluations of f spent re-differencing failing
   columns, next to those of the Jacobian itself, on correct functions that are easy (no
   refinement) and steep (poles, domain edges: refinement needed).
3. float32: false alarms on CORRECT functions, numdiffx (auto step, per-dtype tolerances,
   FD error estimate) vs torch's defaults (eps=1e-6, atol=1e-5, rtol=1e-3).

Run: ``python asv_bench/compare/gradcheck_nd_vs_torch_targets.py`` (from the repository root).
Timings are best of 3 on a shared machine.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

import numdiffx as nd


def _rand(gen: Any, *shape: int, dtype: Any = torch.float64) -> Any:
    return (0.5 * torch.randn(*shape, generator=gen, dtype=dtype)).requires_grad_(True)


def conv_mlp(dtype: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    gen = torch.Generator().manual_seed(0)
    x, conv_w, lin_w = _rand(gen, 1, 2, 6, 6, dtype=dtype), _rand(gen, 3, 2, 3, 3,
                                                                  dtype=dtype), _rand(
        gen, 4, 48, dtype=dtype)

    def f(x: Any, conv_w: Any, lin_w: Any) -> Any:
        h = torch.tanh(torch.nn.functional.conv2d(x, conv_w))  # (1, 3, 4, 4)
        return torch.nn.functional.softplus(h.reshape(1, -1) @ lin_w.T)

    return f, (x, conv_w, lin_w)


def super_resolution() -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """ESPCN-like: three convolutions and a pixel shuffle, 1x16x16 -> 1x32x32."""
    gen = torch.Generator().manual_seed(1)
    img = _rand(gen, 1, 1, 16, 16)
    w1, w2, w3 = _rand(gen, 16, 1, 5, 5), _rand(gen, 8, 16, 3, 3), _rand(gen, 4, 8, 3, 3)
    F = torch.nn.functional

    def net(img: Any, w1: Any, w2: Any, w3: Any) -> Any:
        h = torch.tanh(F.conv2d(img, w1, padding=2))
        h = torch.tanh(F.conv2d(h, w2, padding=1))
        return F.pixel_shuffle(F.conv2d(h, w3, padding=1), 2)

    return net, (img, w1, w2, w3)


def _best(fun: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fun()
        times.append(time.perf_counter() - t)
    return min(times)


def timing() -> None:
    print("1. time inside the checker, best of 3 (ratio numdiffx / torch, target <= 1.5):")
    cases = [("conv+MLP float64", *conv_mlp(torch.float64), (True, False)),
             ("super-resolution net", *super_resolution(), (True,))]
    for name, f, inputs, modes in cases:
        n = sum(int(i.numel()) for i in inputs)
        for fast in modes:
            ours = _best(lambda f=f, inputs=inputs, fast=fast: nd.gradcheck(
                f, inputs, fast_mode=fast))
            theirs = _best(lambda f=f, inputs=inputs, fast=fast: torch.autograd.gradcheck(
                f, inputs, fast_mode=fast))
            print(f"   {name} ({n} inputs), {'fast' if fast else 'slow'} mode: numdiffx "
                  f"{ours * 1e3:8.1f} ms, torch {theirs * 1e3:8.1f} ms, ratio "
                  f"{ours / theirs:5.2f}")


class Counted:
    """f, counting its calls."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f, self.calls = f, 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.f(*args)


def refinement_cost() -> None:
    print("2. cost of the FD error estimate (evaluations of f; slow mode, float64):")
    cases = {
        "easy: sin, tanh*x, softplus on 5 random points": [
            (torch.sin, (0.3, -1.2, 2.0, 0.7, 1.1)), (lambda x: torch.tanh(x) * x,
                                                      (0.5, 1.5, -0.2, 2.2, -1.0)),
            (torch.nn.functional.softplus, (0.1, 3.0, -2.0, 0.4, -0.6))],
        "steep: tan@1.56, digamma@-1.97, logit@0.9999, ndtri@1e-6": [
            (torch.tan, (1.56, 0.3)), (torch.special.digamma, (-1.97, 2.0)),
            (torch.logit, (0.9999, 0.5)), (torch.special.ndtri, (1e-6, 0.5))],
    }
    for name, fs in cases.items():
        base = extra = 0
        seconds_jac = seconds_all = 0.0
        for f, values in fs:
            x = torch.tensor(values, dtype=torch.float64, requires_grad=True)
            counted = Counted(f)
            t = time.perf_counter()
            assert nd.gradcheck(counted, (x,), check_undefined_grad=False)
            seconds_all += time.perf_counter() - t
            # two per column (the checker's own loop: f(x) comes with the autograd call);
            # where that loop hands a column block to the engine (a non-finite value) its
            # calls are counted in the estimate's share
            jac_calls = 2 * x.numel()
            base += jac_calls + 1
            extra += counted.calls - jac_calls - 1
            t = time.perf_counter()
            nd.jacobian(f, x.detach(), evaluation="loop")
            seconds_jac += time.perf_counter() - t
        print(f"   {name}: {base} evaluations for the Jacobian and the autograd call, {extra} "
              f"more for the error estimate ({100 * extra / base:.0f}%); whole check "
              f"{seconds_all * 1e3:.1f} ms vs {seconds_jac * 1e3:.1f} ms for nd.jacobian alone")


def _correct_float32() -> list[tuple[str, Callable[..., Any], tuple[Any, ...]]]:
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
        f, inputs = conv_mlp(torch.float32)
        shifted = tuple((i.detach() + 0.1 * trial).requires_grad_(True) for i in inputs)
        cases.append((f"conv+mlp#{trial}", f, shifted))
    return cases


def false_alarms() -> None:
    cases = _correct_float32()
    counts = {key: 0 for key in ("nd slow", "nd fast", "torch slow", "torch fast")}
    for _, f, inputs in cases:
        counts["nd slow"] += not nd.gradcheck(f, inputs, raise_exception=False)
        counts["nd fast"] += not nd.gradcheck(f, inputs, fast_mode=True, raise_exception=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "not double precision"
            counts["torch slow"] += not torch.autograd.gradcheck(f, inputs,
                                                                 raise_exception=False)
            counts["torch fast"] += not torch.autograd.gradcheck(f, inputs, fast_mode=True,
                                                                 raise_exception=False)
    print(f"3. float32 false alarms on {len(cases)} correct functions (lower is better): "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    torch.set_num_threads(1)
    timing()
    refinement_cost()
    false_alarms()
