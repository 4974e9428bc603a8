"""Shared fixtures: one tiny model per session (built once, ~1 s after the tokenizer cache exists)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model():
    from forensix.models import ForensixModel

    return ForensixModel.from_config("tiny")


@pytest.fixture()
def fresh_tiny_model():
    from forensix.models import ForensixModel

    return ForensixModel.from_config("tiny")


@pytest.fixture(scope="session")
def stage2_batch():
    from forensix.data.datasets import SyntheticForgeryDataset, collate_samples

    data = SyntheticForgeryDataset(stage=2, size=64, length=8, seed=0)
    return collate_samples([data[i] for i in range(3)])
