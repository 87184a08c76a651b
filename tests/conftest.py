"""Shared fixtures: one offline tiny model, and its GGUF, per test session."""

from __future__ import annotations

import pytest

from l1lite.tiny import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Folder of the offline tiny Qwen2 model with its R1-style tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir, tmp_path_factory):
    """The tiny model exported to an f16 GGUF for llama.cpp."""
    from l1lite.export.gguf import export_gguf

    return export_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny.gguf")
