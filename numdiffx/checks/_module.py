"""A torch module's backward with respect to its weights, checked in one call."""

from __future__ import annotations

from typing import Any

from ._gradcheck import gradcheck

__all__ = ["gradcheck_module"]


def gradcheck_module(module: Any, *inputs: Any, check_inputs: bool = False,
                     **kwargs: Any) -> bool:
    """Check a torch module's backward with respect to its parameters (and, with
    ``check_inputs``, its inputs): :func:`numdiffx.gradcheck` of
    ``torch.func.functional_call(module, params, inputs)`` over the dict of named
    parameters. A wrong weight gradient is named by parameter:
    ``d out[0] / d params['fc.weight'][2, 3]: ...``.

    The parameters are checked in their own dtype (use ``module.double()`` for the
    tightest check); buffers and frozen parameters (``requires_grad=False``) are used as
    they are, never perturbed. Keyword arguments go to :func:`numdiffx.gradcheck`.

    Examples
    --------
    >>> import torch, numdiffx as nd
    >>> layer = torch.nn.Linear(3, 2).double()
    >>> nd.gradcheck_module(layer, torch.randn(4, 3, dtype=torch.float64))
    True
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}. "
                        "For a function of a dict of parameters use nd.gradcheck(f, (params, "
                        "x)) directly.")
    params = {name: p.detach().clone().requires_grad_(True)
              for name, p in module.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("module has no parameter that requires grad: there is no weight "
                         "gradient to check.")
    xs = [x.detach().clone().requires_grad_(True) if check_inputs and torch.is_tensor(x)
          and x.is_floating_point() else x for x in inputs]

    def call(p: dict[str, Any], *args: Any) -> Any:
        return torch.func.functional_call(module, p, tuple(args))

    names = ["params", *(f"inputs[{i}]" for i in range(len(xs)))]
    return gradcheck(call, (params, *xs), _input_names=names, **kwargs)
