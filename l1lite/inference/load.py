"""``load_backend``: which backend a model path or endpoint means, with the checks on that choice.

The one module that imports every concrete backend. Must not import the budget algorithm or the CLI.
"""

from __future__ import annotations

import logging
from pathlib import Path

from l1lite.core import vllm
from l1lite.core.config import ConfigError
from l1lite.core.models import BUILTIN_PREFIX, check_gguf, check_provenance, resolve_model
from l1lite.inference.base import Backend, load_vocab
from l1lite.inference.hf import TransformersBackend
from l1lite.inference.llama_cpp import LlamaCppBackend
from l1lite.inference.openai import OpenAIBackend, OpenAIChatBackend
from l1lite.inference.vllm import VLLMBackend

log = logging.getLogger(__name__)
BACKENDS = ("auto", "transformers", "vllm")  # what runs an HF model folder in process


def check_backend(backend: str, model: str | None, endpoint: str | None, key: str = "--backend") -> None:
    """Raise :class:`ConfigError` unless ``backend`` (named ``key`` in messages) can run ``model`` here: one of
    :data:`BACKENDS`, a choice other than ``auto`` only for an HF model folder, and vLLM installed for ``vllm``."""
    if backend not in BACKENDS:
        raise ConfigError(f"{key} must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend != "auto" and (endpoint or (model or "").endswith(".gguf")):
        raise ConfigError(f"--backend {backend} runs an HF model folder, not an --endpoint or a .gguf file")
    if backend == "vllm" and not vllm.available():
        raise ConfigError(f"--backend vllm: vLLM is not installed ({vllm.INSTALL})")


def load_backend(
    model: str | None = None,
    adapter: str | None = None,
    endpoint: str | None = None,
    tokenizer: str | None = None,
    n_ctx: int = 8192,
    seed: int = 0,
    n_threads: int | None = None,
    timeout: float = 600,
    backend: str = "auto",
) -> Backend:
    """``model`` ``.gguf`` -> llama.cpp; a folder -> transformers or vLLM (+ ``adapter``); ``endpoint`` -> OpenAI API.

    Args:
        model: a ``.gguf`` file, an HF model folder, or with ``endpoint`` the served model's name (default: the
            first one the server lists).
        adapter: a PEFT LoRA adapter folder (HF model folders only).
        endpoint: an OpenAI-compatible server's URL.
        tokenizer: with ``endpoint``: an HF tokenizer folder or ``.gguf`` that renders the prompt and counts
            tokens; without one the backend is chat-only (server-side template, no enforcement, counts -1).
        n_ctx: llama.cpp context size.
        seed: seed of the backend's own seed stream (for calls that give none).
        n_threads: llama.cpp threads (default: llama-cpp-python's choice).
        timeout: with ``endpoint``: seconds to wait for the server (to connect, and for each read of an answer).
        backend: what runs an HF model folder: ``auto`` (transformers) or one of :data:`BACKENDS`.
    """
    check_backend(backend, model, endpoint)
    if endpoint:
        if adapter:
            raise ConfigError("--adapter cannot be applied to an --endpoint (load it in the server)")
        if tokenizer:
            return OpenAIBackend(endpoint, load_vocab(tokenizer), model=model, seed=seed, timeout=timeout)
        log.warning(
            "no --tokenizer for %s: using /v1/chat/completions with the server's chat template; "
            "no budget enforcement and no token counts (-1)",
            endpoint,
        )
        return OpenAIChatBackend(endpoint, model=model, seed=seed, timeout=timeout)
    if not model:
        raise ConfigError("give --model (a .gguf file or an HF model folder) or --endpoint URL")
    path = Path(resolve_model(model) if model.startswith(BUILTIN_PREFIX) else model)  # a .gguf stays for llama.cpp
    if not path.exists():
        raise ConfigError(f"model not found: {model}")
    if path.suffix == ".gguf":
        if adapter:
            raise ConfigError("--adapter works with HF model folders; merge and export it for GGUF (l1lite export)")
        check_gguf(path)
        return LlamaCppBackend(str(path), n_ctx=n_ctx, seed=seed, n_threads=n_threads)
    if not (path / "config.json").is_file():
        raise ConfigError(f"--model {model}: neither a .gguf file nor an HF model folder (no config.json)")
    if adapter and not (Path(adapter) / "adapter_config.json").is_file():
        raise ConfigError(f"--adapter {adapter}: not a PEFT adapter folder (no adapter_config.json)")
    if adapter:
        check_provenance(model, adapter, path)  # as export does: the weights it was trained on
    if backend == "vllm":
        return VLLMBackend(str(path), adapter=adapter, seed=seed, n_ctx=n_ctx)
    return TransformersBackend(str(path), adapter=adapter, seed=seed)
