"""Shortened runs of the examples: they must learn (the loss falls by a stated factor)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_mlp_learns():
    pytest.importorskip("sklearn")
    result = load("digits_mlp").main(steps=60, verbose=False)
    assert result["final_loss"] < result["first_loss"] / 3  # ~2.1 -> ~0.47
    assert result["test_accuracy"] > 0.8


def test_digits_cnn_learns():
    pytest.importorskip("sklearn")
    result = load("digits_mlp").main(steps=60, model="cnn", lr=1e-2, verbose=False, trace=False)
    assert result["final_loss"] < result["first_loss"] / 2


def test_lstm_sequence_learns():
    example = load("lstm_sequence")
    result = example.main(steps=250, length=8, verbose=False, n_test=300)
    assert result["final_loss"] < result["first_loss"] / 5  # ~0.69 -> ~0.01
    assert result["test_accuracy"] > 0.9


def test_dyck_data_is_what_it_claims():
    import numpy as np

    example = load("lstm_sequence")
    x, y = example.make_dataset(np.random.default_rng(0), 300, length=10)
    assert x.shape == (300, 10) and 0.35 < y.mean() < 0.65
    assert all(example.is_balanced(list(s)) == bool(label) for s, label in zip(x, y, strict=True))
