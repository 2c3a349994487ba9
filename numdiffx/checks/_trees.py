"""Parameter trees in the gradient checks, and a torch module's weights in one call.

An entry of ``inputs`` that is a tree holding floating arrays -- a dict of named
parameters, nested lists/tuples, namedtuples, dataclasses, registered jax pytrees -- is
flattened at the boundary: each leaf becomes one input of the flat check, named by its
path (``in[0]['layer1.weight']``), and f receives the rebuilt tree. The checks' contract
then holds leaf by leaf: torch tensors with ``requires_grad`` are checked (if any input
requires grad), everything else reaches f untouched. A tree f returns is read the same
way: one output per leaf, named by path (``out['loss']``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from numdiffx._core.trees import Tree, flatten, is_tree, is_tree_output, tree_paths

__all__ = ["FlatCheck", "cross_points", "flatten_check"]


@dataclass
class FlatCheck:
    """A check of trees as a check of flat inputs: f of the leaves, and their names."""

    f: Callable[..., Any]
    inputs: tuple[Any, ...]
    input_names: list[str]
    output_names: list[str]  # filled by f's first call when f's value is a tree


def _float_tree(x: Any, name: str) -> Tree | None:
    if not is_tree(x):
        return None
    try:
        return flatten(x, name, floats=False)  # torch's contract: numbers untouched
    except TypeError:  # no float leaf (a config dict): reaches f untouched, as before
        return None


def flatten_check(f: Callable[..., Any], inputs: Any,
                  input_names: Sequence[str] | None = None) -> FlatCheck | None:
    """The flat check of trees in ``inputs``; None when no entry is a tree (nothing
    changes for flat inputs)."""
    items = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    names = list(input_names) if input_names else [f"in[{i}]" for i in range(len(items))]
    found = [_float_tree(x, names[i]) for i, x in enumerate(items)]
    if all(t is None for t in found):
        return None
    flat: list[Any] = []
    flat_names: list[str] = []
    slots: list[tuple[int, Tree | None, list[int]]] = []  # (item, tree, flat positions)
    for i, (x, tree) in enumerate(zip(items, found)):
        if tree is None:
            slots.append((i, None, [len(flat)]))
            flat.append(x)
            flat_names.append(names[i])
            continue
        slots.append((i, tree, list(range(len(flat), len(flat) + len(tree.diff)))))
        flat += [tree.leaves[leaf] for leaf in tree.diff]
        flat_names += [tree.label(leaf) for leaf in tree.diff]
    output_names: list[str] = []

    def flat_f(*values: Any) -> Any:
        args = list(items)
        for i, tree, positions in slots:
            if tree is None:
                args[i] = values[positions[0]]
                continue
            leaves = list(tree.leaves)
            for leaf, p in zip(tree.diff, positions):
                leaves[leaf] = values[p]
            args[i] = tree.unflatten(leaves)
        out = f(*args)
        if not _tree_value(out):
            return out
        pairs = tree_paths(out)
        if not output_names:
            output_names.extend(f"out{path}" for path, _ in pairs)
        return tuple(leaf for _, leaf in pairs)

    return FlatCheck(flat_f, tuple(flat), flat_names, output_names)


def _tree_value(out: Any) -> bool:
    """A value to read leaf by leaf: a dict, namedtuple, dataclass, registered node, or a
    tuple/list holding one (a plain tuple of arrays stays f's several outputs)."""
    if is_tree_output(out):
        return True
    return isinstance(out, (tuple, list)) and any(
        is_tree_output(o) or isinstance(o, (tuple, list)) for o in out)


def cross_points(items: list[Any], functions: dict[str, Callable[..., Any]],
                 names: Any) -> tuple[list[Any], list[str], dict[str, Callable[..., Any]]] | None:
    """For :func:`cross_check` with trees among the arguments: (the float leaves, their
    labels, each implementation as a function of the leaves). Each implementation gets
    the trees rebuilt from leaves in its own library, then renamed by ``names[key]``: a
    dict ``{canonical key: its key}`` (a tuple key nests: ``("dense1", "kernel")``) or a
    callable ``tree -> tree`` (transposes, restructuring)."""
    found = [_float_tree(x, f"inputs[{i}]") for i, x in enumerate(items)]
    if names is not None and not isinstance(names, dict):
        raise TypeError(f"names must be a dict {{implementation key: mapping}}; got "
                        f"{type(names).__name__}.")
    names = names or {}
    for key in names:
        if key not in functions:
            raise ValueError(f"names[{key!r}] names no implementation; keys are "
                             f"{sorted(functions)}.")
    if all(t is None for t in found):
        if names:
            raise TypeError("names= renames the parameters of a tree; x holds no tree (pass "
                            "a dict of named parameters).")
        return None
    leaves: list[Any] = []
    labels: list[str] = []
    for x, tree in zip(items, found):
        if tree is None:
            leaves.append(x)
            labels.append("")
        else:
            leaves += [tree.leaves[i] for i in tree.diff]
            labels += [tree.paths[i] for i in tree.diff]
    for i, label in enumerate(labels):
        if not label:
            labels[i] = f"inputs[{_item_of(found, i)}]"
        else:
            labels[i] = f"inputs[{_item_of(found, i)}]{label}"
    wrapped = {key: _on_leaves(f, items, found, names.get(key)) for key, f in functions.items()}
    return leaves, labels, wrapped


def _item_of(found: Sequence[Tree | None], flat: int) -> int:
    at = 0
    for i, tree in enumerate(found):
        at += 1 if tree is None else len(tree.diff)
        if flat < at:
            return i
    raise IndexError(flat)  # pragma: no cover


def _on_leaves(f: Callable[..., Any], items: list[Any], found: Sequence[Tree | None],
               mapping: Any) -> Callable[..., Any]:
    if mapping is not None and not (callable(mapping) or isinstance(mapping, dict)):
        raise TypeError(f"each names= entry must be a dict of keys or a callable tree -> "
                        f"tree; got {type(mapping).__name__}.")

    def on_leaves(*values: Any) -> Any:
        args, at = list(items), 0
        for i, tree in enumerate(found):
            if tree is None:
                args[i] = values[at]
                at += 1
                continue
            leaves = list(tree.leaves)
            for leaf in tree.diff:
                leaves[leaf] = values[at]
                at += 1
            args[i] = _renamed(tree.unflatten(leaves), mapping)
        return f(*args)

    return on_leaves


def _renamed(tree: Any, mapping: Any) -> Any:
    if mapping is None:
        return tree
    if callable(mapping):
        return mapping(tree)
    if not isinstance(tree, dict):
        raise TypeError(f"a dict names= mapping renames the keys of a dict of parameters; the "
                        f"tree is a {type(tree).__name__}. Pass a callable tree -> tree.")
    out: dict[Any, Any] = {}
    for key, value in tree.items():
        target = mapping.get(key, key)
        path = target if isinstance(target, tuple) else (target,)
        node = out
        for step in path[:-1]:
            node = node.setdefault(step, {})
        node[path[-1]] = value
    return out
