"""A hand-written Jacobian as the analytical side: ``reference(*inputs)`` returns it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._problem import Problem, real_view_host

__all__ = ["Claimed"]


class Claimed:
    """The claimed Jacobian(s) of a user callable, with the autodiff references' contract.

    ``reference(*inputs)`` returns, for one checked input and one output, one array of
    shape ``out.shape + in.shape``; with several inputs and one output a tuple over
    inputs; with several outputs and one input a tuple over outputs; otherwise a tuple
    over outputs of tuples over inputs. ``None`` means "zero" (no dependence).
    """

    name = "callable"

    def __init__(self, reference: Callable[..., Any], p: Problem) -> None:
        if any(s.is_complex for s in p.inputs + p.outputs):
            raise ValueError("a callable reference describes real Jacobians; for complex "
                             "inputs or outputs check with torch or jax autodiff "
                             "(reference='auto').")
        self.reference = reference
        self.p = p
        self.grad_problems: list[str] = []

    def jacobian(self, outputs: Sequence[int], check_dtypes: bool = False
                 ) -> dict[tuple[int, int], np.ndarray | None]:
        p = self.p
        claimed = self.reference(*p.args)
        slots_out = [s for s in p.outputs if s.index in outputs]
        n_out, n_in = len(slots_out), len(p.inputs)
        if not isinstance(claimed, (tuple, list)):
            nested: list[Any] = [[claimed]]
        elif n_out == 1:
            nested = [list(claimed)]
        elif n_in == 1:
            nested = [[c] for c in claimed]
        else:
            nested = [list(c) for c in claimed]
        if len(nested) != n_out or any(len(row) != n_in for row in nested):
            raise ValueError(f"reference returned Jacobians for {len(nested)} output(s) x "
                             f"{[len(r) for r in nested]} input(s); expected {n_out} x {n_in} "
                             "(a tuple over outputs of tuples over inputs).")
        result: dict[tuple[int, int], np.ndarray | None] = {}
        for o, row in zip(slots_out, nested):
            for s, jac in zip(p.inputs, row):
                if jac is None:
                    result[(o.index, s.index)] = None
                    continue
                arr = real_view_host(jac) if hasattr(jac, "shape") else np.asarray(
                    jac, dtype=np.float64).reshape(-1)
                if arr.size != o.size * s.size:
                    raise ValueError(
                        f"reference returned a Jacobian of {arr.size} elements for {o.name} and "
                        f"{s.name}; expected out.shape + in.shape = {o.shape + s.shape}.")
                result[(o.index, s.index)] = arr.reshape(o.size, s.size)
        return result

    def vjp(self, cotangents: dict[int, np.ndarray], check_dtypes: bool = False
            ) -> dict[int, np.ndarray | None]:
        jac = self.jacobian(list(cotangents))
        result: dict[int, np.ndarray | None] = {}
        for s in self.p.inputs:
            total = None
            for k, v in cotangents.items():
                block = jac[(k, s.index)]
                if block is not None:
                    total = v @ block if total is None else total + v @ block
            result[s.index] = total
        return result
