"""Finite differences as an autodiff rule: black-box functions inside torch and jax programs.

``numdiffx.interop.torch`` and ``numdiffx.interop.jax`` (also reachable as ``nd.torch`` and
``nd.jax``) import their library only when they are themselves imported.
"""
