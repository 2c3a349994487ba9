"""Every operation on parameter trees: flatten at the boundary, unflatten the result.

A differentiated tree becomes one flat vector per dtype group (``trees.flatten``); the
operation runs on the flat vectors with ``f`` wrapped so that f receives the rebuilt tree
(leading batch axes kept) and its value, when it is a tree, is read as the concatenation
of its leaves. Plans, step rules and the evaluator only see flat vectors; the flat call
is the very same one a user with flat arrays would make, so its steps, statuses and cost
are those of the flat call (a one-group float64 tree takes the fast lane). The result is
then cut back into ``jax.jacrev``'s nested layout: the output tree with each leaf
replaced by the input tree of blocks ``out_leaf.shape + in_leaf.shape`` (a tuple of
input trees for tuple ``argnums``); non-differentiated leaves are None there.

Mixed float32/float64 leaves: each dtype group is differenced in its own dtype, at its
own step scale (a float32 leaf is stepped as a float32 array would be) -- for jacobian and
gradient one batched evaluation per group, f(x) shared; jvp adds one directional
difference per group. hessian, hvp and derivative difference all leaves at once and need
one dtype: they refuse a mixed tree, naming the dtypes.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from .result import DiffResult
from .treeresult import TreeDiffResult, tree_result
from .trees import (
    Tree,
    first_float_array,
    flatten,
    is_tree,
    is_tree_output,
    tree_paths,
    tree_structure,
)
from .validation import input_iv

__all__ = ["TreeDiffResult", "any_tree", "refused_tree_output", "tree_jacobian",
           "tree_operation"]

#: the start of the flat engine's refusal of a dict / dataclass value of f
_REFUSAL = "f must return an array; it returned a "


def refused_tree_output(exc: BaseException) -> bool:
    """Whether the flat engine refused f's value because it is a tree (then the tree
    path evaluates f afresh)."""
    return isinstance(exc, TypeError) and str(exc).startswith(_REFUSAL)


def any_tree(args: Sequence[Any], argnums: object) -> bool:
    """Whether a differentiated argument is a tree (False for invalid argnums: the flat
    path's validation then says why)."""
    nums = argnums if isinstance(argnums, (tuple, list)) else (argnums,)
    try:
        return any(is_tree(args[a]) for a in nums)  # type: ignore[index]
    except (TypeError, IndexError):
        return False


# ---------------------------------------------------------------------------------------
# f's value as one flat vector
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutTree:
    """The structure of f's tree value: leaves' shapes and where they sit in the flat
    vector."""

    tree: Tree
    shapes: tuple[tuple[int, ...], ...]
    starts: tuple[int, ...]

    def rows(self, flat: Any, leaf: int) -> Any:
        """Rows of leaf ``leaf`` from an array whose first axis is the flat value."""
        size = math.prod(self.shapes[leaf])
        start = self.starts[leaf]
        xp = array_namespace(flat)
        return xp.reshape(flat[start:start + size], (*self.shapes[leaf], *flat.shape[1:]))

    def unflatten(self, leaf_values: Sequence[Any]) -> Any:
        return self.tree.unflatten(list(leaf_values))


def _leaves_of(value: Any) -> tuple[Tree, list[Any]]:
    """The record of f's tree value and its leaves, every one an array (numbers become
    0-d arrays)."""
    record = tree_structure(value, "out")
    leaves = []
    for path, leaf in zip(record.paths, record.leaves):
        if isinstance(leaf, (bool, int, float, complex)) or isinstance(leaf, np.generic):
            leaf = np.asarray(leaf)
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            raise TypeError(f"f returned a tree whose leaf out{path} is a "
                            f"{type(leaf).__name__}; every leaf of f's value must be an array.")
        leaves.append(leaf)
    return record, leaves


class FlatF:
    """f of trees as a function of flat group vectors, with a flat value."""

    def __init__(self, f: Callable[..., Any], args: Sequence[Any], trees: dict[int, Tree],
                 positions: dict[int, list[int]], xp: Any, tree_mode: bool = True) -> None:
        self.f, self.args, self.trees, self.positions, self.xp = f, list(args), trees, positions, xp
        self.out: OutTree | None = None
        self.tree_mode = tree_mode

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for process executors: the namespace (a module) is found again."""
        return {k: v for k, v in self.__dict__.items() if k != "xp"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        tree = next(iter(self.trees.values()))
        self.xp = array_namespace(tree.leaves[tree.diff[0]])

    def arguments(self, values: Sequence[Any]) -> list[Any]:
        args = list(self.args)
        for a, tree in self.trees.items():
            args[a] = tree.rebuild([values[p] for p in self.positions[a]], self.xp)
        return args

    def __call__(self, *values: Any) -> Any:
        lead = 0
        for a in self.trees:
            lead = values[self.positions[a][0]].ndim - 1
            break
        try:
            y = self.f(*self.arguments(values))
        except Exception as exc:
            if hasattr(exc, "add_note"):  # Python >= 3.11: say where args[k][i] lie
                exc.add_note(f"numdiffx: f received trees rebuilt from flat vectors; in the "
                             f"note below {self.legend()}.")
            raise
        return self.flat_value(y, lead)

    def legend(self) -> str:
        """Which tree leaf each flat vector's elements are."""
        words = []
        for a, tree in self.trees.items():
            for g, p in zip(tree.groups, self.positions[a]):
                for i, start in zip(g.leaves, g.starts):
                    size = math.prod(tuple(tree.leaves[i].shape))
                    words.append(f"args[{p}][{start}:{start + size}] is {tree.label(i)}")
        return "; ".join(words[:8]) + (" ..." if len(words) > 8 else "")

    def flat_value(self, y: Any, lead: int) -> Any:
        """f's value: an array as it is; a tree as its leaves, concatenated."""
        if hasattr(y, "shape") and hasattr(y, "dtype") or isinstance(y, (int, float, complex)):
            return y
        if isinstance(y, (list, tuple)) and not is_tree_output(y) and (
                _numbers(y) or not self.tree_mode and all(
                    hasattr(o, "shape") for o in y)):
            return y  # stacked by the engine, as before trees
        if not (is_tree_output(y) or isinstance(y, (list, tuple))):
            raise TypeError(f"f must return an array or a tree of arrays; it returned a "
                            f"{type(y).__name__}.")
        structure, leaves = _leaves_of(y)
        if self.out is None:
            shapes = tuple(tuple(leaf.shape[lead:]) for leaf in leaves)
            starts = tuple(int(s) for s in np.cumsum([0, *map(math.prod, shapes)])[:-1])
            self.out = OutTree(structure, shapes, starts)
        xp = array_namespace(*leaves)
        wide = xp.result_type(*leaves)
        parts = [xp.reshape(xp.astype(leaf, wide), (*leaf.shape[:lead], -1))
                 for leaf in leaves]
        return parts[0] if len(parts) == 1 else xp.concat(parts, axis=-1)


def _numbers(y: Any) -> bool:
    return all(isinstance(v, (bool, int, float, complex)) for v in y)


# ---------------------------------------------------------------------------------------
# results back into trees
# ---------------------------------------------------------------------------------------
def _per_out(out: OutTree | None, block: Callable[[Callable[[Any], Any]], Any]) -> Any:
    """``block(rows)`` for each leaf of f's value (rows: the array's first axes cut to the
    leaf's shape), rebuilt into f's value structure; f's array value: block(identity)."""
    if out is None:
        return block(lambda a: a)
    return out.unflatten([block(functools.partial(_rows, out, k))
                          for k in range(len(out.shapes))])


def _rows(out: OutTree, k: int, a: Any) -> Any:
    return out.rows(a, k)


# ---------------------------------------------------------------------------------------
# jacobian and gradient
# ---------------------------------------------------------------------------------------
def _flatten_arguments(args: Sequence[Any], nums: Sequence[int], root: str, method: Any
                       ) -> tuple[list[Any], dict[int, Tree], dict[int, list[int]], Any]:
    """(new args: group vectors appended, trees, their vectors' positions, namespace)."""
    new = list(args)
    trees: dict[int, Tree] = {}
    positions: dict[int, list[int]] = {}
    xp = None
    like = first_float_array(args)  # Python floats become arrays of the call's library
    for a in nums:
        x = args[a]
        if not is_tree(x):
            x = input_iv(x, f"{root}[{a}]", method)[1]
        tree = flatten(x, f"{root}[{a}]", like=like)
        xpa = array_namespace(*(tree.leaves[i] for i in tree.diff))
        xp = xp or xpa
        trees[a] = tree
        new[a] = None
        positions[a] = []
        for vector in tree.vectors(xpa):
            positions[a].append(len(new))
            new.append(vector)
    return new, trees, positions, xp


def tree_jacobian(jacobian: Callable[..., Any], f: Callable[..., Any], args: Sequence[Any],
                  argnums: object, options: tuple[Any, ...]) -> Any:
    """jacobian/gradient of trees: ``jacobian(f, args, argnums, *options)`` is the flat
    operation; ``options`` its options in order, from method (0) to f0 (12)."""
    from .stencils import resolve_method
    from .validation import argnums_iv, callable_iv

    method, full_output, batch_axis, sparsity, f0 = (options[0], options[5], options[7],
                                                     options[8], options[12])
    callable_iv(f)
    nums, as_tuple = argnums_iv(argnums, len(args))
    _no_batch_axis(batch_axis)
    if sparsity is not None:
        raise TypeError("sparsity= works on one flat array; pass the tree's leaves "
                        "concatenated, or drop sparsity= for a tree.")

    def call(g: Callable[..., Any], flat_args: Sequence[Any], flat_nums: object,
             g0: Any) -> Any:
        return jacobian(g, flat_args, flat_nums, *options[:8], None, *options[9:12], g0,
                        *options[13:])

    new, trees, positions, xp = _flatten_arguments(args, nums, "args", resolve_method(method))
    flat_f = FlatF(f, args, trees, positions, xp, tree_mode=any(
        t.node is not None for t in trees.values()))
    order = [p for a in nums for p in positions[a]]
    flat0 = None if f0 is None else flat_f.flat_value(f0, 0)
    got = call(flat_f, new, order[0] if len(order) == 1 else tuple(order), flat0)
    parts = list(got) if len(order) > 1 else [got]
    at = {p: k for k, p in enumerate(order)}

    def assemble(name: str, blocks: Sequence[Any]) -> Any:
        def per_leaf(rows: Callable[[Any], Any]) -> Any:
            per_arg = []
            for a in nums:
                pieces: dict[int, Any] = {}
                for g, p in enumerate(positions[a]):
                    b = rows(blocks[at[p]])
                    pieces.update(trees[a].split(b, g, array_namespace(b),
                                                 lead=tuple(b.shape[:-1])))
                if name == "value":
                    pieces = {i: _in_dtype(v, trees[a].leaves[i]) for i, v in pieces.items()}
                per_arg.append(trees[a].fill(pieces))
            return tuple(per_arg) if as_tuple else per_arg[0]

        return _per_out(flat_f.out, per_leaf)

    def steps(blocks: Sequence[Any]) -> Any:
        values = [r.value for r in parts]
        if all(tuple(s.shape) == tuple(v.shape) for s, v in zip(blocks, values)):
            return assemble("step", blocks)
        per_arg = []
        for a in nums:  # one step per input element: the input trees
            pieces = {}
            for g, p in enumerate(positions[a]):
                s = blocks[at[p]]
                pieces.update(trees[a].split(s, g, array_namespace(s)))
            per_arg.append(trees[a].fill(pieces))
        return tuple(per_arg) if as_tuple else per_arg[0]

    return tree_result(full_output, parts, assemble, steps)


def _in_dtype(block: Any, leaf: Any) -> Any:
    """A real block in its real leaf's dtype (as jax.jacrev: a float32 leaf's derivatives
    are float32 even when f's value is float64)."""
    if block.dtype == leaf.dtype:
        return block
    xp = array_namespace(block)
    if xp.isdtype(block.dtype, "real floating") and xp.isdtype(leaf.dtype, "real floating"):
        return xp.astype(block, leaf.dtype)
    return block


def _no_batch_axis(batch_axis: object) -> None:
    if batch_axis != 0:
        raise ValueError(f"batch_axis={batch_axis!r} applies to flat arrays; with a tree the "
                         "batch is a new leading axis of every float leaf (batch_axis=0).")


# ---------------------------------------------------------------------------------------
# hessian, jvp, hvp, derivative: all leaves in one vector of one dtype
# ---------------------------------------------------------------------------------------
def _one_group(tree: Tree, op: str) -> None:
    if len(tree.groups) > 1:
        dtypes = ", ".join(str(g.dtype) for g in tree.groups)
        raise TypeError(f"{op} differences all leaves of {tree.root} together, which needs one "
                        f"dtype; its float leaves have dtypes {dtypes}. Cast the tree to one "
                        "dtype (nd.jacobian, nd.gradient and nd.jvp take mixed trees).")


def _aligned(tree: Tree, value: Any, name: str, lead: int, group: int = 0) -> Any:
    """The float leaves of ``value`` (a tree shaped like ``tree``: tangents, a gradient)
    at the paths of ``tree``'s dtype group ``group``, as one flat vector in its dtype."""
    found = dict(tree_paths(value))
    parts = []
    xp = None
    for i in tree.groups[group].leaves:
        path = tree.paths[i]
        if path not in found:
            raise ValueError(f"{name} has no leaf at {tree.label(i).replace(tree.root, name)}; "
                             f"it must have the structure of {tree.root}.")
        leaf, like = found[path], tree.leaves[i]
        xp = xp or array_namespace(like)
        if isinstance(leaf, (int, float)) or isinstance(leaf, np.generic):  # a float leaf's
            leaf = xp.asarray(leaf, dtype=like.dtype, device=device(like))  # tangent
        shape = tuple(like.shape)
        if not hasattr(leaf, "shape") or tuple(leaf.shape[lead:]) != shape:
            got = tuple(leaf.shape) if hasattr(leaf, "shape") else type(leaf).__name__
            raise ValueError(f"{name}{path} has shape {got} but {tree.label(i)} has shape "
                             f"{shape}; they must match.")
        if array_namespace(leaf) is not xp:
            raise TypeError(f"{name}{path} is a {type(leaf).__name__}; it must come from the "
                            f"same array library as {tree.label(i)}.")
        parts.append(xp.reshape(xp.astype(leaf, tree.groups[group].dtype),
                                (*leaf.shape[:lead], -1)))
    assert xp is not None
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=-1)


class _Signature:
    """The public function's parameters, bound; calls it again with some replaced."""

    def __init__(self, fn: Callable[..., Any], a: tuple[Any, ...], kw: dict[str, Any]) -> None:
        self.sig = inspect.signature(fn)
        bound = self.sig.bind(*a, **kw)
        bound.apply_defaults()
        self.fn, self.arguments = fn, dict(bound.arguments)

    def __getitem__(self, name: str) -> Any:
        return self.arguments[name]

    def __call__(self, **replaced: Any) -> Any:
        values = {**self.arguments, **replaced}
        pos: list[Any] = []
        kw: dict[str, Any] = {}
        for name, p in self.sig.parameters.items():
            if p.kind is p.VAR_POSITIONAL:
                pos.extend(values[name])
            elif p.kind is p.VAR_KEYWORD:
                kw.update(values[name])
            elif p.kind is p.KEYWORD_ONLY:
                kw[name] = values[name]
            else:
                pos.append(values[name])
        return self.fn(*pos, **kw)


def _single(call: _Signature, root: str, x: Any, op: str, others: Sequence[Any] = (),
            mixed: bool = False) -> tuple[Tree, Any, Any]:
    """(tree of x, its flat vector, namespace); ``others``: the call's other arguments;
    ``mixed``: several dtype groups are allowed (the vector is then the first group's)."""
    from .stencils import resolve_method

    if not is_tree(x):
        x = input_iv(x, root, resolve_method(call["method"] or "central"))[1]
    tree = flatten(x, root, like=first_float_array([x, *others]))
    if not mixed:
        _one_group(tree, op)
    xp = array_namespace(*(tree.leaves[i] for i in tree.diff))
    return tree, tree.vectors(xp)[0], xp


def _hessian(call: _Signature) -> Any:
    args, argnums = call["args"], call["argnums"]
    if isinstance(argnums, (tuple, list)) or isinstance(argnums, bool) or not isinstance(
            argnums, int) or not -len(args) <= argnums < len(args):
        return call()  # the flat validation says what is wrong
    _no_batch_axis(call["batch_axis"])
    a = argnums % len(args)
    tree, v, xp = _single(call, f"args[{a}]", args[a], "hessian", args)
    new = list(args)
    new[a] = v
    flat_f = FlatF(call["f"], args, {a: tree}, {a: [a]}, xp) if call["f"] is not None else None
    grad, grad0, f0 = call["grad"], call["grad0"], call["f0"]
    flat_grad = None
    if grad is not None:
        def flat_grad(*values: Any) -> Any:
            rebuilt = list(values)
            rebuilt[a] = tree.rebuild([values[a]], xp)
            return _aligned(tree, grad(*rebuilt), "grad(...)", values[a].ndim - 1)

    got = call(f=flat_f, args=tuple(new), grad=flat_grad,
               grad0=None if grad0 is None else _aligned(tree, grad0, "grad0", 0),
               f0=None if f0 is None or flat_f is None else flat_f.flat_value(f0, 0))
    n = tree.groups[0].size

    def assemble(_: str, blocks: Sequence[Any]) -> Any:
        def per_leaf(rows: Callable[[Any], Any]) -> Any:
            h = rows(blocks[0])
            lead = tuple(h.shape[:-2])
            outer = tree.split(h, 0, xp, lead=lead, trailing=(n,))
            return tree.fill({i: tree.fill(tree.split(block, 0, xp,
                                                      lead=tuple(block.shape[:-1])))
                              for i, block in outer.items()})

        return _per_out(None if flat_f is None else flat_f.out, per_leaf)

    return tree_result(call["full_output"], [got], assemble,
                   lambda s: _input_shaped(tree, s[0], n, xp))


def _input_shaped(tree: Tree, s: Any, n: int, xp: Any) -> Any:
    """A step per input element as the input tree (other steps as they are)."""
    if s is None:
        return None
    if tuple(s.shape) == (n,):
        return tree.fill(tree.split(s, 0, xp))
    return s


def _primal_tree(call: _Signature, op: str) -> tuple[Tree, Any, Any, Any, bool]:
    """(tree of the primals, flat primal, flat tangent, namespace, several primals)."""
    primals, tangents = call["primals"], call["tangents"]
    several = isinstance(primals, (tuple, list)) and not hasattr(primals, "_fields")
    tree, v, xp = _single(call, "primals", tuple(primals) if several else primals, op)
    t = _aligned(tree, tuple(tangents) if several and isinstance(tangents, list) else tangents,
                 "tangents", 0)
    return tree, v, t, xp, several


def _jvp(call: _Signature) -> Any:
    """One directional difference per dtype group (one for most trees), summed: J v is
    linear in v, and each group is stepped in its own dtype."""
    _no_batch_axis(call["batch_axis"])
    primals, tangents = call["primals"], call["tangents"]
    several = isinstance(primals, (tuple, list)) and not hasattr(primals, "_fields")
    tree, _, xp = _single(call, "primals", tuple(primals) if several else primals, "jvp",
                          mixed=True)
    if several and isinstance(tangents, list):
        tangents = tuple(tangents)
    vs = tree.vectors(xp)
    flat_f = FlatF(lambda p: call["f"](*p) if several else call["f"](p), [None], {0: tree},
                   {0: list(range(len(vs)))}, xp)
    f0 = call["f0"]
    flat0 = None if f0 is None else flat_f.flat_value(f0, 0)
    parts = []
    for g, v in enumerate(vs):
        value, got = call(f=functools.partial(_moving, flat_f, vs, g), primals=v,
                          tangents=_aligned(tree, tangents, "tangents", 0, g), f0=flat0)
        flat0 = value if flat0 is None else flat0  # f(x) once for every group
        parts.append(got)
    out = flat_f.out

    def assemble(_: str, blocks: Sequence[Any]) -> Any:
        return _per_out(out, lambda rows: rows(blocks[0]))

    primal_out = assemble("value", [value])
    if not call["full_output"]:
        return primal_out, assemble("value", [functools.reduce(lambda a, b: a + b, parts)])
    return primal_out, tree_result(True, [_summed(parts)], assemble)


def _moving(flat_f: FlatF, vectors: Sequence[Any], g: int, v: Any) -> Any:
    """flat_f with group ``g`` at ``v`` and the others at x (given v's batch axes)."""
    lead = tuple(v.shape[:-1])
    xp = array_namespace(v)
    return flat_f(*(v if h == g else xp.broadcast_to(w, (*lead, w.shape[-1])) if lead else w
                    for h, w in enumerate(vectors)))


def _summed(parts: Sequence[Any]) -> Any:
    """The DiffResults of the groups' directional differences as one: values and error
    estimates added, the first non-SUCCESS status kept, every evaluation counted."""
    if len(parts) == 1:
        return parts[0]
    xp = array_namespace(parts[0].value)
    value, error, status = parts[0].value, parts[0].error, parts[0].status
    for r in parts[1:]:
        value = value + r.value
        error = None if error is None or r.error is None else error + r.error
        status = xp.where(status != 0, status, r.status)
    return DiffResult(value, error, tuple(r.step for r in parts), sum(r.nfev for r in parts),
                      status)


def _hvp(call: _Signature) -> Any:
    _no_batch_axis(call["batch_axis"])
    tree, v, t, xp, several = _primal_tree(call, "hvp")
    f, grad, grad0, f0 = call["f"], call["grad"], call["grad0"], call["f0"]
    flat_f = None if f is None else FlatF(lambda p: f(*p) if several else f(p), [None],
                                          {0: tree}, {0: [0]}, xp)
    flat_grad = None
    if grad is not None:
        if several:
            raise TypeError("with grad=, primals must be one tree (grad returns the gradient "
                            "with respect to it).")

        def flat_grad(value: Any) -> Any:
            return _aligned(tree, grad(tree.rebuild([value], xp)), "grad(...)", value.ndim - 1)

    got = call(f=flat_f, primals=v, tangents=t, grad=flat_grad,
               grad0=None if grad0 is None else _aligned(tree, grad0, "grad0", 0),
               f0=None if f0 is None or flat_f is None else flat_f.flat_value(f0, 0))

    def assemble(_: str, blocks: Sequence[Any]) -> Any:
        def per_leaf(rows: Callable[[Any], Any]) -> Any:
            b = rows(blocks[0])
            return tree.fill(tree.split(b, 0, xp, lead=tuple(b.shape[:-1])))

        return _per_out(None if flat_f is None else flat_f.out, per_leaf)

    n = tree.groups[0].size
    return tree_result(call["full_output"], [got], assemble,
                   lambda s: _input_shaped(tree, s[0], n, xp))


def _derivative(call: _Signature) -> Any:
    tree, v, xp = _single(call, "x", call["x"], "derivative")
    f = call["f"]

    def flat_f(value: Any) -> Any:
        return _aligned(tree, f(tree.rebuild([value], xp)), "f(x)", value.ndim - 1)

    f0 = call["f0"]
    got = call(f=flat_f, x=v, f0=None if f0 is None else _aligned(tree, f0, "f0", 0))

    def assemble(_: str, blocks: Sequence[Any]) -> Any:
        return tree.fill(tree.split(blocks[0], 0, xp))

    return tree_result(call["full_output"], [got], assemble, lambda s: assemble("step", s))


def _args_tree(a: tuple[Any, ...], kw: dict[str, Any]) -> bool:
    return any_tree(a[1:], kw.get("argnums", 0))


def _primals_arg(a: tuple[Any, ...], kw: dict[str, Any]) -> bool:
    primals = a[1] if len(a) > 1 else kw.get("primals")
    if isinstance(primals, (tuple, list)) and not hasattr(primals, "_fields"):
        return any(is_tree(p) for p in primals)
    return is_tree(primals)


def _x_arg(a: tuple[Any, ...], kw: dict[str, Any]) -> bool:
    return is_tree(a[1] if len(a) > 1 else kw.get("x"))


_TREE_OPS: dict[str, tuple[Callable[[_Signature], Any],
                           Callable[[tuple[Any, ...], dict[str, Any]], bool], bool]] = {
    # name: (the tree path, whether an argument is a tree, whether f may return a tree)
    "hessian": (_hessian, _args_tree, True),
    "jvp": (_jvp, _primals_arg, True),
    "hvp": (_hvp, _primals_arg, True),
    "derivative": (_derivative, _x_arg, False),  # elementwise: a tree value needs a tree x
}


def tree_operation(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a public operation: trees as arguments (or as f's value) go through the
    tree path; flat arrays call the operation itself, unchanged (one isinstance-level
    test of the differentiated argument first)."""
    run, wanted, tree_value = _TREE_OPS[name]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def operation(*a: Any, **kw: Any) -> Any:
            if wanted(a, kw):
                return run(_Signature(fn, a, kw))
            try:
                return fn(*a, **kw)
            except TypeError as exc:
                if not (tree_value and refused_tree_output(exc)):
                    raise
            return run(_Signature(fn, a, kw))  # f's value is a tree: f is evaluated afresh

        return operation

    return decorate
