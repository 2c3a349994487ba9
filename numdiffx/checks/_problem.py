"""What a gradient check works on: torch's contract for ``inputs``, the checked outputs,
and the real view in which both are compared.

The contract (the same as ``torch.autograd.gradcheck``): floating-point or complex
tensors with ``requires_grad=True`` are checked; every other entry of ``inputs`` --
numbers, strings, enums, dicts, modules, integer tensors, tensors without
``requires_grad`` -- reaches ``f`` untouched and is never perturbed. (If no tensor
requires grad, every floating tensor is checked, where torch would refuse.) numpy and
jax arrays have no ``requires_grad``: every floating one is checked. Outputs are
checked when autodiff can differentiate them (torch: ``requires_grad``); others are
left out, as torch does, unless asked to be checked against zero.

Real view: a complex array of n elements is the 2n reals ``(re_0, im_0, ...)``; inputs
and outputs are compared in this view, so real and imaginary parts are both checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from numdiffx.backends import backend_for
from numdiffx.backends.autodiff import framework_of, reference_for, to_host

__all__ = ["GradcheckError", "Problem", "Slot", "build_problem"]


class GradcheckError(AssertionError, RuntimeError):
    """A gradient check failed; the FIRST line says which derivative, by how much, and why.

    A subclass of ``AssertionError`` (a failed check, like a failed ``assert`` in a
    test), so ``pytest`` reports it as a test failure and its short traceback shows the
    verdict line; and of ``RuntimeError``, the class ``torch.autograd.gradcheck`` raises,
    so a suite written for torch's check (``except RuntimeError: self.fail(...)``)
    catches numdiffx's too.
    """


@dataclass(frozen=True)
class Slot:
    """One checked input or output of f, in the real view."""

    index: int  # position among f's inputs (or outputs)
    name: str  # "in[1]", "out[0]", "grad_outputs[0]" ...
    shape: tuple[int, ...]
    dtype: Any
    is_complex: bool
    eps: float  # machine epsilon of the real dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape) * (2 if self.is_complex else 1)

    def element(self, flat: int) -> str:
        """The label of real-view element ``flat``: 'in[1][2, 3]' or 'Im in[1][2, 3]'."""
        part = ""
        if self.is_complex:
            part = "Im " if flat % 2 else "Re "
            flat //= 2
        where = ", ".join(str(int(v)) for v in np.unravel_index(flat, self.shape)) if (
            self.shape) else ""
        return f"{part}{self.name}[{where}]" if self.shape else f"{part}{self.name}"


@dataclass
class Problem:
    """A validated check: f, the call arguments, checked inputs and outputs, f(x)."""

    f: Callable[..., Any]
    framework: str
    args: list[Any]  # private copies where checked, the caller's objects elsewhere
    inputs: list[Slot]
    outputs: list[Slot]
    nondiff: list[Slot]  # float outputs autodiff declares non-differentiable
    structure: list[tuple[tuple[int, ...], str] | None]  # every output: (shape, dtype)
    f0: dict[int, np.ndarray]  # real view (float64) of checked and nondiff outputs at x
    reference: Any = None  # the autodiff reference (torch/jax) or None
    skipped: list[str] = field(default_factory=list)

    hosts: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def host(self, i: int) -> np.ndarray:
        """:func:`real_view_host` of argument ``i``, made once (checked arguments are the
        check's private copies, never written)."""
        found = self.hosts.get(i)
        if found is None:
            found = self.hosts[i] = real_view_host(self.args[i])
        return found

    @property
    def check_eps(self) -> float:
        """Machine epsilon of the least precise checked input or output."""
        return max(s.eps for s in self.inputs + self.outputs)


def _as_items(inputs: Any) -> list[Any]:
    return list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]


def _is_array(x: Any) -> bool:
    if isinstance(x, (bool, int, float, complex, str, bytes)) or x is None:
        return False
    try:
        _namespace(x)  # looked up once per array type
    except TypeError:
        return False
    return hasattr(x, "dtype") and hasattr(x, "shape")


def is_inexact(x: Any) -> bool:
    """Whether ``x`` is a real or complex floating array (one that has a derivative)."""
    if not _is_array(x):
        return False
    try:
        return bool(_namespace(x).isdtype(x.dtype, ("real floating", "complex floating")))
    except (TypeError, ValueError):  # a dtype the namespace does not know (bfloat16 ...)
        return "float" in str(x.dtype)


def _slot(x: Any, index: int, name: str) -> Slot:
    xp = _namespace(x)
    cplx = bool(xp.isdtype(x.dtype, "complex floating"))
    real = str(x.dtype).replace("torch.", "").replace("complex128", "float64").replace(
        "complex64", "float32")
    if real in ("float16", "bfloat16"):
        raise TypeError(
            f"{name} has dtype {x.dtype}: a 16-bit float holds about 3 significant digits, so "
            "a finite difference in it has at most one or two and cannot tell a right "
            "gradient from a wrong one. Check a float32 or float64 version of f instead "
            "(e.g. f(*[t.double() for t in inputs]) with a float64 computation inside).")
    return Slot(index, name, tuple(int(n) for n in x.shape), x.dtype, cplx,
                float(xp.finfo(x.dtype).eps))  # (complex: its real part's eps)


def _private(x: Any) -> Any:
    """A private copy of a checked input; torch: detached, conjugation resolved, strides
    kept (a non-contiguous input stays non-contiguous) unless memory overlaps."""
    if framework_of(x) != "torch":
        return backend_for(x).prepare(x, array_namespace(x))
    x = x.detach().resolve_conj().resolve_neg()
    if any(st == 0 and n > 1 for st, n in zip(x.stride(), x.shape)):
        return x.contiguous().clone()  # expanded: each element its own memory
    import torch

    return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device).copy_(x)


def build_problem(f: Callable[..., Any], inputs: Any, reference: object, *,
                  input_names: Sequence[str] | None = None,
                  output_names: Sequence[str] | None = None) -> Problem:
    """Validate ``f`` and ``inputs``; evaluate f once (with autodiff when it is the
    reference); classify the outputs."""
    if not callable(f):
        raise TypeError(f"f must be callable; got {type(f).__name__}. Pass the function, "
                        "e.g. nd.gradcheck(f, (x,)).")
    items = _as_items(inputs)
    if not items:
        raise ValueError("inputs must hold at least one array; e.g. gradcheck(f, (x,)).")
    floats = [i for i, x in enumerate(items) if is_inexact(x)]
    if any(framework_of(items[i]) == "torch" for i in floats):  # numpy arrays pass through
        floats = [i for i in floats if framework_of(items[i]) == "torch"]
    if not floats:
        raise TypeError("gradcheck needs at least one floating-point or complex array in "
                        "inputs (numpy, torch or jax); got "
                        + ", ".join(type(x).__name__ for x in items) + ".")
    frameworks = {framework_of(items[i]) for i in floats}
    if len(frameworks) > 1:
        raise TypeError(f"all floating inputs must come from one array library; got "
                        f"{sorted(frameworks)}. Convert them first.")
    framework = frameworks.pop()
    checked = floats
    if framework == "torch":
        requested = [i for i in floats if items[i].requires_grad]
        checked = requested or floats
        for i in checked:
            if items[i].layout != _torch_strided():
                raise TypeError(f"inputs[{i}] is a {items[i].layout} tensor: numdiffx checks "
                                "dense tensors; pass inputs[i].to_dense() (masked semantics "
                                "are not supported).")
    names = list(input_names) if input_names else [f"in[{i}]" for i in range(len(items))]
    slots = [_slot(items[i], i, names[i]) for i in checked]
    args = list(items)
    for i in checked:
        args[i] = _private(items[i])
    kind = reference_kind(framework, reference)
    ref = None
    if kind in ("torch", "jax"):
        ref = reference_for(kind)(f, args, checked)
        outs = ref.outputs
    else:
        with backend_for(args[checked[0]]).no_grad():
            out = f(*args)
        outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        for s in slots:  # mutable arrays: f must leave its inputs as it found them
            if not np.array_equal(to_host(args[s.index]), to_host(items[s.index]),
                                  equal_nan=True):
                raise GradcheckError(
                    f"f modified {s.name} in place; likely cause: an in-place update inside f "
                    "(x *= 2, x[...] = ...). A gradient check evaluates f many times at the "
                    "same point, so every later evaluation would be wrong; work on a copy "
                    "inside f. (Your arrays were not touched: the check passes copies.)")
    return _classify(f, framework, args, slots, outs, ref, output_names)


def _torch_strided() -> Any:
    import torch

    return torch.strided


def reference_kind(framework: str, reference: object) -> str:
    """'torch', 'jax' or 'callable' for the analytical side, validated."""
    if callable(reference):
        return "callable"
    if reference not in ("auto", "torch", "jax"):
        raise ValueError(f"reference={reference!r} is not known; use 'auto', 'torch', 'jax' or "
                         "a callable returning the claimed Jacobian(s).")
    kind = framework if reference == "auto" else str(reference)
    if kind not in ("torch", "jax"):
        raise ValueError(f"reference='auto' needs torch or jax inputs to differentiate "
                         f"analytically; got {framework} arrays. Pass reference=callable "
                         "returning the claimed Jacobian (shape out.shape + in.shape).")
    if kind != framework:
        raise ValueError(f"reference={reference!r} cannot differentiate {framework} arrays; "
                         f"use reference='auto' or convert the inputs to {kind}.")
    return kind


def _as_output(o: Any) -> Any:
    """numpy scalars (``np.sum`` returns one) are 0-d arrays."""
    return np.asarray(o) if isinstance(o, np.generic) else o


def _classify(f: Callable[..., Any], framework: str, args: list[Any], slots: list[Slot],
              outs: Sequence[Any], ref: Any, output_names: Sequence[str] | None) -> Problem:
    names = list(output_names) if output_names else [f"out[{k}]" for k in range(len(outs))]
    checked, nondiff, skipped = [], [], []
    structure: list[tuple[tuple[int, ...], str] | None] = []
    f0: dict[int, np.ndarray] = {}
    for k, o in enumerate(outs):
        o = _as_output(o)
        if not _is_array(o):
            structure.append(None)
            skipped.append(f"{names[k]} is a {type(o).__name__}, not an array: left out.")
            continue
        structure.append((tuple(int(n) for n in o.shape), str(o.dtype)))
        if not is_inexact(o):
            skipped.append(f"{names[k]} has dtype {o.dtype}: not differentiable, left out "
                           "(integer and boolean outputs have no Jacobian).")
            continue
        slot = _slot(o, k, names[k])
        f0[k] = real_view_host(o)
        if ref is not None and not ref.differentiable(k):
            nondiff.append(slot)
            skipped.append(f"{names[k]} does not require grad (autodiff declares it "
                           "non-differentiable, as torch does): left out; pass "
                           "check_nondiff_outputs=True to check that its derivative is zero.")
        else:
            checked.append(slot)
    return Problem(f, framework, args, slots, checked, nondiff, structure, f0, ref, skipped)


def _describe(structure: tuple[tuple[int, ...], str] | None) -> str:
    if structure is None:
        return "a non-array"
    shape, dtype = structure
    return f"shape {shape} {dtype.replace('torch.', '')}"


def real_view_host(x: Any) -> np.ndarray:
    """Real view of any array as a flat host float64 vector."""
    host = to_host(x)
    if np.iscomplexobj(host):
        host = np.stack([host.real, host.imag], axis=-1)
    return host.reshape(-1).astype(np.float64)


_NAMESPACES: dict[type, Any] = {}


def _namespace(x: Any) -> Any:
    """``array_namespace(x)``, looked up once per array type (a check calls f once per
    perturbed element: the lookup cost as much as a small f)."""
    xp = _NAMESPACES.get(type(x))
    if xp is None:
        xp = array_namespace(x)
        if len(_NAMESPACES) < 64:
            _NAMESPACES[type(x)] = xp
    return xp


def real_view(x: Any) -> Any:
    """The flat real view of ``x`` in its own namespace (re, im interleaved)."""
    xp = _namespace(x)
    if xp.isdtype(x.dtype, "complex floating"):
        x = xp.stack([xp.real(x), xp.imag(x)], axis=-1)
    return xp.reshape(x, (-1,))


#: array types whose objects ``_is_array`` accepted (the check costs as much as a small f)
_ARRAY_TYPES: set[type] = set()
#: dtypes of the pieces and values of an OutputsOf call -> their result type
_WIDE: dict[tuple[Any, ...], Any] = {}


def _from_real_view_fast(r: Any, slot: Slot) -> Any:
    """:func:`from_real_view`; a real view already in the slot's dtype is reshaped by its
    own method (a view, as the namespace's reshape gives it)."""
    if not slot.is_complex and r.dtype == slot.dtype and hasattr(r, "reshape"):
        return r.reshape(slot.shape)
    return from_real_view(r, slot)


def from_real_view(r: Any, slot: Slot) -> Any:
    """The array of ``slot`` (shape, dtype) whose flat real view is ``r``."""
    xp = _namespace(r)
    if slot.is_complex:
        pairs = xp.reshape(r, (-1, 2))
        z = xp.astype(pairs[:, 0], slot.dtype) + 1j * xp.astype(pairs[:, 1], slot.dtype)
        return xp.reshape(z, slot.shape)
    return xp.astype(xp.reshape(r, slot.shape), slot.dtype)


class OutputsOf:
    """f as a function of the real views of checked inputs -> one flat float64 vector.

    ``OutputsOf(p, [i, j])(r_i, r_j)`` rebuilds inputs i and j from their real views.
    Every call runs without an autodiff graph and is checked against f(x): same
    outputs, shapes and dtypes, else GradcheckError naming what was perturbed.
    """

    def __init__(self, p: Problem, which: Sequence[int], outputs: Sequence[Slot]) -> None:
        self.p = p
        self.slots = [s for s in p.inputs if s.index in which]
        self.outputs = list(outputs)
        self.backend = backend_for(p.args[self.slots[0].index])
        self.calls = 0
        self.seen: dict[int, tuple[Any, Any, Any]] = {}

    def __call__(self, *values: Any) -> Any:
        p = self.p
        self.calls += 1
        args = list(p.args)
        for s, v in zip(self.slots, values):
            args[s.index] = _from_real_view_fast(v, s)
        with self.backend.no_grad():
            out = p.f(*args)
        outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(p.structure):
            perturbed = ", ".join(s.name for s in self.slots)
            raise GradcheckError(
                f"f returned {len(outs)} outputs when {perturbed} was perturbed but "
                f"{len(p.structure)} at x: f's output structure must not depend on the "
                "input values.")
        pieces = []
        for s in self.outputs:
            o: Any = _as_output(outs[s.index])
            seen = self.seen.get(s.index)  # (shape, dtype) objects already matched
            if seen is not None and type(o) is seen[0] and o.shape == seen[1] and (
                    o.dtype == seen[2]):
                pieces.append(real_view(o) if s.is_complex else _namespace(o).reshape(o, (-1,)))
                continue
            got = (tuple(int(n) for n in o.shape), str(o.dtype)) if (
                type(o) in _ARRAY_TYPES or _is_array(o)) else None
            if got != p.structure[s.index]:
                perturbed = ", ".join(s.name for s in self.slots)
                raise GradcheckError(
                    f"{s.name} changed from {_describe(p.structure[s.index])} at x to "
                    f"{_describe(got)} when {perturbed} was perturbed; likely cause: f is not "
                    "differentiable there (its output structure depends on the input values, "
                    "e.g. boolean-mask indexing or a data-dependent branch).")
            if len(_ARRAY_TYPES) < 64:
                _ARRAY_TYPES.add(type(o))
            self.seen[s.index] = (type(o), o.shape, o.dtype)
            pieces.append(real_view(o) if s.is_complex else _namespace(o).reshape(o, (-1,)))
        xp = _namespace(pieces[0])
        # each dtype after its type: dtypes of two libraries are never compared
        key = tuple(t for a in (*pieces, *values) for t in (type(a.dtype), a.dtype))
        wide = _WIDE.get(key)
        if wide is None:
            wide = xp.result_type(*pieces, *values)
            if len(_WIDE) < 256:
                _WIDE[key] = wide
        if len(pieces) == 1:  # f's own: a copy, in the wide dtype
            flat = xp.astype(pieces[0], wide, copy=True)
        else:
            flat = xp.concat([xp.astype(q, wide) for q in pieces], axis=0)
        return flat.detach() if hasattr(flat, "detach") else flat

    def split(self, flat: np.ndarray) -> dict[int, np.ndarray]:
        """Rows of the concatenated output -> {output index: its rows}."""
        out, start = {}, 0
        for s in self.outputs:
            out[s.index] = flat[start:start + s.size]
            start += s.size
        return out
