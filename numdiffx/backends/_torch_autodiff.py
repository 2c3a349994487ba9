"""torch autodiff references for the gradient checks: autograd, forward AD, and vmap of both.

Real view (see :mod:`numdiffx.backends.autodiff`): with torch's convention, the gradient
of a real quantity L with respect to a complex ``z = a + ib`` is ``dL/da + i dL/db``, and a
backward with grad_output ``g`` on a complex output ``w = p + iq`` differentiates
``L = Re(conj(g) w)``: ``g = 1`` gives the row of ``p``, ``g = 1j`` the row of ``q``. So
the real-view Jacobian rows come from backwards with ``1`` / ``1j`` basis grad_outputs
and the real view of each gradient -- exactly what torch's own gradcheck checks through
its Wirtinger formulas, without a special case.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["Reference", "to_host"]


def to_host(x: Any) -> np.ndarray:
    """A host numpy copy: detached, dense, conjugation and negation resolved, ZeroTensor
    materialised, bfloat16 widened to float32 (numpy has no bfloat16)."""
    x = x.detach()
    if x.layout != torch.strided:
        x = x.to_dense()
    if x._is_zerotensor():
        x = torch.zeros(x.shape, dtype=x.dtype)
    x = x.resolve_conj().resolve_neg()
    if x.dtype == torch.bfloat16:
        x = x.float()
    return np.array(x.cpu().numpy(), copy=True)


def _real_flat(g: Any) -> np.ndarray:
    """Real view of a tensor as a flat host float64 vector (re, im interleaved)."""
    host = to_host(g)
    if np.iscomplexobj(host):
        host = np.stack([host.real, host.imag], axis=-1)
    return host.reshape(-1).astype(np.float64)


def _from_real_flat(v: np.ndarray, like: Any) -> Any:
    """The tensor (like ``like``: shape, dtype, device) whose real view is ``v``."""
    v = np.asarray(v, dtype=np.float64)
    if like.is_complex():
        pairs = v.reshape(-1, 2)
        v = pairs[:, 0] + 1j * pairs[:, 1]
    # a copy, never a view of v: a backward that writes into its grad_output must not
    # change the check's cotangent (the reentrancy run uses the same one)
    return torch.tensor(v.reshape(tuple(like.shape)), dtype=like.dtype, device=like.device)


def _as_tuple(out: Any) -> tuple[Any, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _basis_row(out: Any, row: int) -> Any:
    """grad_output selecting real-view row ``row`` of ``out``: 1 (or 1j) at one element."""
    go = torch.zeros_like(out, memory_format=torch.contiguous_format)
    flat = go.view(-1)
    if out.is_complex():
        flat[row // 2] = 1j if row % 2 else 1.0  # type: ignore[assignment]
    else:
        flat[row] = 1.0
    return go


def rows_of(out: Any) -> int:
    """Real-view size of a tensor."""
    return out.numel() * (2 if out.is_complex() else 1)


class Reference:
    """torch autograd (and forward AD) as the analytical side of a gradient check.

    ``f`` is called once with autograd on, at ``args`` where the ``checked`` entries
    are detached copies requiring grad; the graph is kept for every backward.
    ``grad_problems`` collects size/dtype mismatches of the gradients met so far.
    """

    name = "torch"

    def __init__(self, f: Callable[..., Any], args: Sequence[Any], checked: Sequence[int]
                 ) -> None:
        self.f = f
        self.args = list(args)
        self.checked = list(checked)
        self.leaves = list(args)
        for i in self.checked:
            self.leaves[i] = args[i].detach().requires_grad_(True)
        with torch.enable_grad():
            self.outputs = _as_tuple(f(*self.leaves))
        self.grad_problems: list[str] = []

    # ------------------------------------------------------------------ backward
    def differentiable(self, k: int) -> bool:
        o = self.outputs[k]
        return isinstance(o, torch.Tensor) and bool(o.requires_grad)

    def _grad(self, pairs: Sequence[tuple[int, Any]], create_graph: bool = False
              ) -> tuple[Any, ...]:
        pairs = [(k, go) for k, go in pairs if self.differentiable(k)]
        if not pairs:
            return (None,) * len(self.checked)
        return torch.autograd.grad([self.outputs[k] for k, _ in pairs],
                                   [self.leaves[i] for i in self.checked],
                                   [go for _, go in pairs], retain_graph=True,
                                   allow_unused=True, create_graph=create_graph)

    def _record(self, grads: Sequence[Any], check_dtypes: bool) -> None:
        for i, g in zip(self.checked, grads):
            leaf = self.leaves[i]
            if g is None:
                continue
            if tuple(g.shape) != tuple(leaf.shape):
                self.grad_problems.append(
                    f"the backward returned a gradient of shape {tuple(g.shape)} for in[{i}] "
                    f"of shape {tuple(leaf.shape)} (analytical gradient has incorrect size)")
            elif check_dtypes and g.dtype != leaf.dtype:
                self.grad_problems.append(
                    f"the backward returned a {g.dtype} gradient for in[{i}] of dtype "
                    f"{leaf.dtype} (gradient has dtype mismatch; check_grad_dtypes=True)")

    def vjp(self, cotangents: dict[int, np.ndarray], check_dtypes: bool = False
            ) -> dict[int, np.ndarray | None]:
        """{i: real view of v^T J for input i, or None} from ONE backward."""
        pairs = [(k, _from_real_flat(v, self.outputs[k])) for k, v in cotangents.items()]
        grads = self._grad(pairs)
        self._record(grads, check_dtypes)
        return {i: None if g is None else _real_flat(g) for i, g in zip(self.checked, grads)}

    def jacobian(self, outputs: Sequence[int], check_dtypes: bool = False
                 ) -> dict[tuple[int, int], np.ndarray | None]:
        """Real-view Jacobian blocks, one backward per output row (as torch's gradcheck)."""
        result: dict[tuple[int, int], np.ndarray | None] = {}
        sizes = {i: rows_of(self.leaves[i]) for i in self.checked}
        leaves = [self.leaves[i] for i in self.checked]
        shapes = [tuple(leaf.shape) for leaf in leaves]
        for k in outputs:
            out = self.outputs[k]
            m = rows_of(out)
            # the rows gathered on the device as float64 (one copy per row and input, the
            # host copy once per block); a gradient a plain copy would not render (sparse,
            # a ZeroTensor, complex) goes through _real_flat, as before
            blocks = {i: torch.zeros((m, sizes[i]), dtype=torch.float64, device=leaf.device)
                      for i, leaf in zip(self.checked, leaves)}
            seen = dict.fromkeys(self.checked, False)
            rows = m if self.differentiable(k) else 0
            basis = None if out.is_complex() or rows == 0 else torch.zeros_like(
                out, memory_format=torch.contiguous_format)
            for row in range(rows):
                if basis is None:
                    go = _basis_row(out, row)
                else:  # one buffer, its element set and reset (as torch's gradcheck)
                    go = basis
                    basis.view(-1)[row] = 1.0
                    version = basis._version
                grads = torch.autograd.grad(out, leaves, go, retain_graph=True,
                                            allow_unused=True)
                self._record(grads, check_dtypes)
                for i, g, shape in zip(self.checked, grads, shapes):
                    if g is None or tuple(g.shape) != shape:
                        continue
                    if g.layout == torch.strided and not g.is_complex() and (
                            not g._is_zerotensor()):
                        blocks[i][row] = g.detach().reshape(-1)
                    else:
                        blocks[i][row] = torch.from_numpy(_real_flat(g))
                    seen[i] = True
                if basis is not None:  # after the copies: a gradient may be a view of it
                    if basis._version == version:
                        basis.view(-1)[row] = 0.0
                    else:  # a backward wrote into its grad_output: all of it again
                        basis.zero_()
            for i in self.checked:
                result[(k, i)] = (blocks[i].cpu().numpy() if seen[i] or m == 0 else None)
        return result

    # ------------------------------------------------------------------ forward mode
    def _dual_call(self, tangents: dict[int, Any]) -> list[Any]:
        fw = torch.autograd.forward_ad
        with fw.dual_level():
            args = [a.detach() if isinstance(a, torch.Tensor) else a for a in self.args]
            for i, t in tangents.items():
                args[i] = fw.make_dual(args[i], t)
            outs = _as_tuple(self.f(*args))
            tangent_outs: list[Any] = []
            for o in outs:
                if not isinstance(o, torch.Tensor):
                    tangent_outs.append(None)
                    continue
                primal, tangent = fw.unpack_dual(o)
                tangent_outs.append(None if tangent is None else tangent.clone())
        return tangent_outs

    def jvp(self, tangents: dict[int, np.ndarray], outputs: Sequence[int]
            ) -> dict[int, np.ndarray]:
        """{k: real view of J u} by forward-mode AD (a custom Function's ``jvp``)."""
        outs = self._dual_call({i: _from_real_flat(u, self.args[i]) for i, u in tangents.items()})
        return {k: (np.zeros(rows_of(self.outputs[k])) if outs[k] is None else
                    _real_flat(outs[k])) for k in outputs}

    def jacobian_forward(self, outputs: Sequence[int]) -> dict[tuple[int, int], np.ndarray]:
        """Real-view Jacobian blocks by forward AD, one dual evaluation per input column."""
        result = {}
        for i in self.checked:
            n = rows_of(self.args[i])
            cols = []
            for j in range(n):
                e = np.zeros(n)
                e[j] = 1.0
                cols.append(self.jvp({i: e}, outputs))
            for k in outputs:
                m = rows_of(self.outputs[k])
                result[(k, i)] = (np.stack([c[k] for c in cols], axis=1) if cols else
                                  np.zeros((m, 0)))
        return result

    # ------------------------------------------------------------------ torch's extra checks
    def backward_ignores_zero_grad_output(self, outputs: Sequence[int]) -> str | None:
        """Backward with zero grad_outputs must give zero gradients of the right kind."""
        pairs = [(k, torch.zeros_like(self.outputs[k])) for k in outputs]
        grads = self._grad(pairs)
        for i, g in zip(self.checked, grads):
            leaf = self.leaves[i]
            if g is None:
                continue
            if not bool(torch.all(g == 0)):
                return (f"the backward is not multiplied by grad_output: with grad_output 0 "
                        f"it returned a non-zero gradient for in[{i}]")
            if g.dtype != leaf.dtype or g.device != leaf.device or g.shape != leaf.shape:
                return (f"the gradient of in[{i}] has the wrong dtype, device or size "
                        f"({g.dtype}, {g.device}, {tuple(g.shape)} for an input of "
                        f"{leaf.dtype}, {leaf.device}, {tuple(leaf.shape)})")
        return None

    def undefined_grad_problem(self, outputs: Sequence[int]) -> str | None:
        """torch's undefined-output-gradient test: a backward must accept undefined grads."""
        undefined = getattr(torch._C._functions, "UndefinedGrad", None)
        if undefined is None:  # pragma: no cover - older torch
            return None

        def run(which: set[int]) -> str | None:
            with torch.enable_grad():
                outs = _as_tuple(self.f(*self.leaves))
            chosen = [undefined()(outs[k]) if k in which else outs[k] for k in outputs]
            try:
                grads = torch.autograd.grad(chosen, [self.leaves[i] for i in self.checked],
                                            [torch.zeros_like(o) for o in chosen],
                                            allow_unused=True)
            except RuntimeError as exc:
                return (f"the backward does not handle undefined output gradients ({exc}); "
                        "pass check_undefined_grad=False if this is intended")
            if any(g is not None and not bool(torch.all(g == 0)) for g in grads):
                return ("the backward returned non-zero input gradients for undefined (zero) "
                        "output gradients")
            return None

        tensors = [k for k in outputs if isinstance(self.outputs[k], torch.Tensor)]
        problem = run(set(tensors))
        if problem is None and len(tensors) > 1:
            for k in tensors:
                problem = problem or run({k})
        return problem

    def batched_grad_problem(self, outputs: Sequence[int], seed: int) -> str | None:
        """vmap over the backward (``is_grads_batched``) against two single backwards."""
        gen = torch.Generator().manual_seed(seed)
        leaves = [self.leaves[i] for i in self.checked]
        for k in outputs:
            out = self.outputs[k]
            if not self.differentiable(k):
                continue
            gos = [torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
                   for _ in range(2)]
            expected = [self._grad([(k, go)]) for go in gos]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="There is a performance drop")
                try:
                    batched = torch.autograd.grad(out, leaves, torch.stack(gos),
                                                  retain_graph=True, allow_unused=True,
                                                  is_grads_batched=True)
                except RuntimeError as exc:
                    return (f"vmap over the backward of out[{k}] failed ({exc}); the backward "
                            "uses a vmap-incompatible operation (check_batched_grad=True)")
            for pos, (i, res) in enumerate(zip(self.checked, batched)):
                exp = [e[pos] for e in expected]
                if res is None and all(e is None for e in exp):
                    continue
                full = torch.stack([torch.zeros_like(self.leaves[i]) if e is None else e
                                    for e in exp])
                got = torch.zeros_like(full) if res is None else res
                if not torch.allclose(got, full):
                    return (f"the batched (vmapped) backward of out[{k}] w.r.t. in[{i}] "
                            "differs from two single backwards (check_batched_grad=True)")
        return None

    def batched_forward_problem(self, outputs: Sequence[int], seed: int) -> str | None:
        """vmap over forward-mode AD against two single forward-mode evaluations."""
        from torch._vmap_internals import _vmap  # what torch's own gradcheck uses

        gen = torch.Generator().manual_seed(seed)
        fw = torch.autograd.forward_ad
        for i in self.checked:
            x = self.args[i]

            def jvp_of(t: Any, i: int = i) -> tuple[Any, ...]:
                with fw.dual_level():
                    args = [a.detach() if isinstance(a, torch.Tensor) else a for a in self.args]
                    args[i] = fw.make_dual(args[i], t)
                    outs = _as_tuple(self.f(*args))
                    res = []
                    for k in outputs:
                        primal, tangent = fw.unpack_dual(outs[k])
                        res.append(torch.zeros_like(primal) if tangent is None else tangent)
                    return tuple(res)

            tangents = [torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
                        for _ in range(2)]
            expected = [jvp_of(t) for t in tangents]
            try:
                batched = _vmap(jvp_of)(torch.stack(tangents))
            except RuntimeError as exc:
                return (f"vmap over forward-mode AD w.r.t. in[{i}] failed ({exc}) "
                        "(check_batched_forward_grad=True)")
            for pos, k in enumerate(outputs):
                if not torch.allclose(batched[pos], torch.stack([e[pos] for e in expected])):
                    return (f"the batched forward-mode derivative of out[{k}] w.r.t. in[{i}] "
                            "differs from two single ones (check_batched_forward_grad=True)")
        return None

    # ------------------------------------------------------------------ second order
    def first_backward(self, n_inputs: int, checked_inputs: Sequence[int],
                       outputs: Sequence[int]) -> Callable[..., tuple[Any, ...]]:
        """G(*inputs, *grad_outputs): the first backward of f, differentiable again.

        Returns the gradients w.r.t. ``checked_inputs`` (zeros where there is no path),
        built with ``create_graph=True`` so that autograd can differentiate G: its
        backward is f's double backward.
        """
        f = self.f

        def first_backward(*args: Any) -> tuple[Any, ...]:
            xs, gos = list(args[:n_inputs]), list(args[n_inputs:])
            with torch.enable_grad():
                for i in checked_inputs:
                    if not xs[i].requires_grad:  # a numerical evaluation: plain tensors
                        xs[i] = xs[i].detach().requires_grad_(True)
                outs = _as_tuple(f(*xs))
                used = [(outs[k], go) for k, go in zip(outputs, gos)
                        if isinstance(outs[k], torch.Tensor) and outs[k].requires_grad]
                grads: Sequence[Any] = (None,) * len(checked_inputs)
                if used:
                    grads = torch.autograd.grad([o for o, _ in used],
                                                [xs[i] for i in checked_inputs],
                                                [go for _, go in used], create_graph=True,
                                                allow_unused=True)
            return tuple(torch.zeros_like(xs[i]) if g is None else g
                         for i, g in zip(checked_inputs, grads))

        return first_backward

    def hvp(self, scalar_output: int, tangents: dict[int, np.ndarray]
            ) -> dict[int, np.ndarray | None]:
        """{i: real view of H v}: the derivative of <grad f, v> (double backward)."""
        leaves = [self.leaves[i] for i in self.checked]
        with torch.enable_grad():
            grads = torch.autograd.grad(self.outputs[scalar_output], leaves, create_graph=True,
                                        retain_graph=True, allow_unused=True)
            terms = [(g * _from_real_flat(tangents[i], self.leaves[i]).conj()).real.sum()
                     for i, g in zip(self.checked, grads) if g is not None]
            dot = sum(terms) if terms else None
            if dot is None or not isinstance(dot, torch.Tensor) or not dot.requires_grad:
                return dict.fromkeys(self.checked)
            second = torch.autograd.grad(dot, leaves, retain_graph=True, allow_unused=True)
        return {i: None if g is None else _real_flat(g) for i, g in zip(self.checked, second)}
