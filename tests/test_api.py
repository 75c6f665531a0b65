"""The public API: a curated, sorted __all__ whose every name exists."""

from __future__ import annotations

import importlib

import pytest

import recon

MODULES = ["recon", "recon.errors", "recon.models", "recon.store", "recon.config", "recon.lock"]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    assert len(exported) == len(set(exported))
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"


def test_no_private_names_exported() -> None:
    assert not [n for n in recon.__all__ if n.startswith("_") and n != "__version__"]


def test_every_error_is_a_recon_error() -> None:
    from recon import errors

    for attr in errors.__all__:
        obj = getattr(errors, attr)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, errors.ReconError)
            assert obj.__name__ in (errors.__doc__ or ""), f"{attr} is not documented in the tree"
