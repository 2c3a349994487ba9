"""Parameter trees: dicts, lists, tuples, namedtuples, dataclasses and registered nodes.

A differentiated argument that is not one array is a *tree*: containers whose leaves are
arrays. :func:`flatten` records its structure, every leaf's path (``['layer1.weight']``,
``[0]``, ``.w``) and which leaves are differentiated: floating (real or complex) arrays
of any library, and Python floats (as jax does: 0-d arrays in the dtype of the tree's
float arrays, float64 without any; f receives the array). Every other leaf -- ints,
bools, strings, None, integer or boolean arrays, modules -- reaches f untouched and is
never perturbed (torch's contract for ``gradcheck`` inputs, applied inside the tree; the
checks keep Python floats untouched too, as torch does).

The differentiated leaves are grouped by dtype; each group is one flat vector in its own
dtype (float32 leaves are stepped at float32's scale, float64 leaves at float64's), and
:meth:`Tree.rebuild` turns the group vectors -- with any leading batch axes -- back into
the tree f receives, each leaf in its own shape and dtype.

The containers Python itself has are flattened here, in pure Python; any other object is
offered to the backends (``numdiffx.backends.tree_node``: jax's registry when jax is
loaded, so any registered jax pytree -- equinox- or flax-style -- works), and otherwise
to :func:`dataclasses.fields` for a dataclass instance; else it is a leaf passed through.
Dict order is the dict's own (insertion) order.

A top-level list or tuple of Python numbers is an array, as it always was (``np.asarray``);
a list or tuple holding an array, a dict or another container is a tree.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from numdiffx.backends import tree_node

__all__ = ["Tree", "first_float_array", "flatten", "is_tree", "is_tree_output", "tree_paths",
           "tree_structure"]

_NUMBERS = (bool, int, float, complex)


def _is_array(a: Any) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype") and not isinstance(a, type)


def _is_number_list(x: Any) -> bool:
    """A (nested) list or tuple of Python numbers: an array, as before trees."""
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        return all(_is_number_list(v) for v in x)
    return isinstance(x, _NUMBERS) or isinstance(x, np.generic)


def is_tree(x: Any) -> bool:
    """Whether a differentiated argument is a tree (not one array or list of numbers)."""
    if _is_array(x) or isinstance(x, (*_NUMBERS, str, bytes)) or x is None:
        return False
    if isinstance(x, (dict, list, tuple)):
        return not _is_number_list(x)
    return dataclasses.is_dataclass(x) or tree_node(x) is not None


def is_tree_output(y: Any) -> bool:
    """Whether f's value is a tree that the flat engine does not read as an array: a
    dict, namedtuple, dataclass or registered node (a list/tuple of arrays is stacked, as
    it always was, unless the inputs are trees)."""
    if _is_array(y) or isinstance(y, (*_NUMBERS, list)) or y is None:
        return False
    if isinstance(y, tuple):
        return hasattr(y, "_fields")
    return isinstance(y, dict) or dataclasses.is_dataclass(y) or tree_node(y) is not None


# ---------------------------------------------------------------------------------------
# the structure: nested nodes, rebuilt from an iterator of leaves
# ---------------------------------------------------------------------------------------
_Node = Any  # None (a leaf) or (kind, data, children)


def _children(x: Any) -> tuple[str, Any, list[tuple[str, Any]]] | None:
    """(kind, rebuild data, [(path step, child)]) of a container; None for a leaf."""
    if _is_array(x) or isinstance(x, (*_NUMBERS, str, bytes)) or x is None:
        return None
    if isinstance(x, dict):
        return "dict", (type(x), list(x)), [(f"[{k!r}]", v) for k, v in x.items()]
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return "namedtuple", type(x), [(f".{k}", getattr(x, k)) for k in x._fields]
    if isinstance(x, (list, tuple)):
        return "sequence", type(x), [(f"[{i}]", v) for i, v in enumerate(x)]
    foreign = tree_node(x)
    if foreign is not None:
        keys, kids, rebuild = foreign
        return "foreign", rebuild, list(zip(keys, kids))
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        names = [fl.name for fl in dataclasses.fields(x) if fl.init]
        return "dataclass", (x, names), [(f".{k}", getattr(x, k)) for k in names]
    return None


def _build(kind: str, data: Any, kids: list[Any]) -> Any:
    if kind == "dict":
        cls, keys = data
        out = dict(zip(keys, kids))
        return out if cls is dict else cls(out)
    if kind == "namedtuple":
        return data(*kids)
    if kind == "sequence":
        return data(kids)
    if kind == "foreign":
        return data(kids)
    obj, names = data
    return dataclasses.replace(obj, **dict(zip(names, kids)))


def _walk(x: Any, path: str, paths: list[str], leaves: list[Any]) -> _Node:
    found = _children(x)
    if found is None:
        paths.append(path)
        leaves.append(x)
        return None
    kind, data, items = found
    return kind, data, [_walk(v, path + step, paths, leaves) for step, v in items]


def _unwalk(node: _Node, leaves: Any) -> Any:
    if node is None:
        return next(leaves)
    kind, data, kids = node
    return _build(kind, data, [_unwalk(k, leaves) for k in kids])


def _is_float_array(a: Any) -> bool:
    if not _is_array(a):
        return False
    kind = getattr(a.dtype, "kind", None)  # numpy dtypes (numpy, cupy, jax)
    if kind is not None:
        return kind in "fc"
    if hasattr(a.dtype, "is_floating_point"):  # torch dtypes
        return bool(a.dtype.is_floating_point or a.dtype.is_complex)
    xp = array_namespace(a)  # any other array API library (array-api-strict ...)
    return bool(xp.isdtype(a.dtype, ("real floating", "complex floating")))


@dataclass(frozen=True)
class Group:
    """The differentiated leaves of one dtype: one flat vector."""

    dtype: Any
    leaves: tuple[int, ...]  # indices into Tree.leaves
    starts: tuple[int, ...]
    size: int


@dataclass(frozen=True)
class Tree:
    """A flattened tree: structure, leaves, their paths, the float leaves' groups."""

    node: _Node
    leaves: tuple[Any, ...]
    paths: tuple[str, ...]  # each leaf's path, after the root's name
    root: str  # "args[0]", "primals", "in[1]"
    diff: tuple[int, ...]  # differentiated leaves, in tree order
    groups: tuple[Group, ...]

    def label(self, leaf: int) -> str:
        return self.root + self.paths[leaf]

    def vectors(self, xp: Any) -> list[Any]:
        """One flat vector per dtype group (the leaves concatenated, copied)."""
        out = []
        for g in self.groups:
            parts = [xp.reshape(self.leaves[i], (-1,)) for i in g.leaves]
            out.append(parts[0] if len(parts) == 1 else xp.concat(parts, axis=0))
        return out

    def unflatten(self, leaves: Sequence[Any]) -> Any:
        """The tree with these leaves (one per leaf, tree order)."""
        return _unwalk(self.node, iter(leaves))

    def rebuild(self, vectors: Sequence[Any], xp: Any) -> Any:
        """The tree f receives: each float leaf cut from its group vector (any leading
        batch axes kept), the other leaves the caller's own objects."""
        leaves = list(self.leaves)
        for g, v in zip(self.groups, vectors):
            lead = tuple(v.shape[:-1])
            for i, start in zip(g.leaves, g.starts):
                shape = tuple(self.leaves[i].shape)
                piece = v[..., start:start + math.prod(shape)]
                leaves[i] = xp.reshape(piece, (*lead, *shape))
        return self.unflatten(leaves)

    def split(self, flat: Any, group: int, xp: Any, lead: tuple[int, ...] = (),
              trailing: tuple[int, ...] = ()) -> dict[int, Any]:
        """``flat`` of shape ``lead + (group size,) + trailing`` cut into {leaf: piece of
        shape lead + leaf shape + trailing}."""
        g = self.groups[group]
        out = {}
        for i, start in zip(g.leaves, g.starts):
            shape = tuple(self.leaves[i].shape)
            size = math.prod(shape)
            index = (slice(None),) * len(lead) + (slice(start, start + size),)
            out[i] = xp.reshape(flat[index], (*lead, *shape, *trailing))
        return out

    def fill(self, pieces: dict[int, Any], missing: Any = None) -> Any:
        """The tree with ``pieces`` at the differentiated leaves, ``missing`` elsewhere."""
        return self.unflatten([pieces.get(i, missing) for i in range(len(self.leaves))])


def first_float_array(values: Sequence[Any]) -> Any:
    """The first floating array among ``values`` and their trees' leaves, or None."""
    for v in values:
        for _, leaf in tree_paths(v):
            if _is_float_array(leaf):
                return leaf
    return None


def flatten(x: Any, root: str, floats: bool = True, like: Any = None) -> Tree:
    """Flatten tree ``x`` (the argument named ``root``); TypeError if it holds no float
    array or arrays of several libraries. ``floats``: Python floats in the tree are
    differentiated too, as 0-d arrays of the library and dtype of the tree's first float
    array -- else of ``like`` (the call's other arrays), else numpy float64 -- as jax
    differentiates them; without ``floats`` they are constants (the checks' torch
    contract)."""
    paths: list[str] = []
    leaves: list[Any] = []
    node = _walk(x, "", paths, leaves)
    diff = tuple(i for i, a in enumerate(leaves) if _is_float_array(a)
                 or floats and type(a) is float)
    if not diff:
        raise TypeError(f"{root} is a {type(x).__name__} with no floating-point value to "
                        "differentiate; its leaves must include float arrays or floats (ints, "
                        "bools, strings and None are passed through, never perturbed).")
    if floats:
        like = next((leaves[i] for i in diff if type(leaves[i]) is not float), like)
        xp = np if like is None else array_namespace(like)
        for i in diff:
            if type(leaves[i]) is float:
                leaves[i] = (np.asarray(leaves[i]) if like is None else
                             xp.asarray(leaves[i], dtype=like.dtype, device=device(like)))
    libraries = {array_namespace(leaves[i]).__name__ for i in diff}
    if len(libraries) > 1:
        raise TypeError(f"{root} holds arrays of several libraries ({sorted(libraries)}); "
                        "every float leaf must come from one library. Convert them first.")
    by_dtype: dict[str, list[int]] = {}
    for i in diff:
        by_dtype.setdefault(str(leaves[i].dtype), []).append(i)
    groups = []
    for members in by_dtype.values():
        starts, at = [], 0
        for i in members:
            starts.append(at)
            at += math.prod(tuple(leaves[i].shape))
        groups.append(Group(leaves[members[0]].dtype, tuple(members), tuple(starts), at))
    return Tree(node, tuple(leaves), tuple(paths), root, diff, tuple(groups))


def tree_structure(x: Any, root: str = "") -> Tree:
    """The record of any tree, every leaf kept (no groups): to rebuild values of its
    structure with :meth:`Tree.unflatten`."""
    paths: list[str] = []
    leaves: list[Any] = []
    node = _walk(x, "", paths, leaves)
    return Tree(node, tuple(leaves), tuple(paths), root, tuple(range(len(leaves))), ())


def tree_paths(x: Any) -> list[tuple[str, Any]]:
    """[(path, leaf)] of any tree, in tree order (a plain array: [("", x)])."""
    paths: list[str] = []
    leaves: list[Any] = []
    _walk(x, "", paths, leaves)
    return list(zip(paths, leaves))


def element_label(label: str, shape: tuple[int, ...], flat: int) -> str:
    """``params['w'][2, 3]`` for element ``flat`` of a leaf of ``shape``."""
    if not shape:
        return label
    index = ", ".join(str(int(i)) for i in np.unravel_index(flat, shape))
    return f"{label}[{index}]"

