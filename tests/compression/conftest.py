"""Shared fixtures for the compression tests: a tiny zoo CNN (deterministic weights)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")


@pytest.fixture(scope="session")
def tiny_spec():
    from edgekit.model_zoo import get_spec

    return get_spec("resnet_tiny")


@pytest.fixture()
def tiny_model(tiny_spec):
    return tiny_spec.build()
