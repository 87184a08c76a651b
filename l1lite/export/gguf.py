"""f16 GGUF writing: the safetensors reader, the gguf-py writer and llama.cpp's converter as a fallback.

The f16 GGUF is written by gguf-py tensor by tensor straight from the safetensors files (peak memory
stays near the largest tensor, not the model); 2-D weights are F16, 1-D tensors F32. Architectures
l1lite does not cover go through a llama.cpp checkout's ``convert_hf_to_gguf.py``. The safetensors
reader is also what ``merge`` checks adapter shapes with.

Must not import the rest of ``l1lite.export``; torch and gguf are imported only when called.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from l1lite.core.config import ConfigError
from l1lite.core.files import atomic_path

SUPPORTED_ARCHS = ("Qwen2ForCausalLM",)
PRE_TOKENIZER = "deepseek-r1-qwen"  # llama.cpp's name for R1-Distill-Qwen's pre-tokenizer split
_LOOKS_SPECIAL = re.compile(r"^<[|｜].*[|｜]>$")  # <|...|> and <｜...｜> control tokens


# ---------------------------------------------------------------- safetensors, read one tensor at a time


def safetensors_index(model_dir: Path) -> dict[str, tuple[Path, int, dict]]:
    """Map tensor name -> (file, data start, header entry) for every ``*.safetensors`` file in ``model_dir``."""
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ConfigError(f"{model_dir}: no *.safetensors files")
    index = {}
    for path in files:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        header.pop("__metadata__", None)
        for name, info in header.items():
            index[name] = (path, 8 + n, info)
    return index


def _read_tensor(path: Path, start: int, info: dict) -> Any:
    """Read one tensor (as a torch tensor) from a safetensors file without mapping the whole file."""
    import torch

    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    if info["dtype"] not in dtypes:
        raise ConfigError(f"{path}: unsupported tensor dtype {info['dtype']}")
    begin, end = info["data_offsets"]
    buf = bytearray(end - begin)
    with open(path, "rb") as f:
        f.seek(start + begin)
        if f.readinto(buf) != len(buf):
            raise ConfigError(f"{path}: truncated safetensors file (tensor data ends early)")
    return torch.frombuffer(buf, dtype=dtypes[info["dtype"]]).reshape(info["shape"])


# ---------------------------------------------------------------- f16 GGUF through gguf-py


def load_hf_config(model_dir: Path) -> dict:
    """``config.json`` of a Hugging Face folder; a one-line :class:`ConfigError` if the writer does not cover it."""
    path = model_dir / "config.json"
    if not path.is_file():
        raise ConfigError(f"{model_dir}: no config.json (not a Hugging Face model folder)")
    config = json.loads(path.read_text())
    arch = (config.get("architectures") or ["?"])[0]
    if arch not in SUPPORTED_ARCHS:
        raise ConfigError(
            f"{model_dir}: architecture {arch} is not covered by l1lite (only {', '.join(SUPPORTED_ARCHS)}); "
            "pass --llama-cpp DIR to use llama.cpp's converter"
        )
    return config


def _vocab(model_dir: Path, n_vocab: int) -> tuple[list[str], list[int]]:
    """Tokens and token types from tokenizer.json, padded to ``n_vocab`` with unused ``[PAD{i}]`` tokens."""
    import gguf

    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise ConfigError(f"{model_dir}: no tokenizer.json (a byte-level BPE fast tokenizer is required)")
    tok = json.loads(path.read_text(encoding="utf-8"))
    if tok.get("model", {}).get("type") != "BPE":
        raise ConfigError(f"{path}: tokenizer model is {tok.get('model', {}).get('type')}, expected BPE")
    normal = {i: t for t, i in tok["model"]["vocab"].items()}
    added = {a["id"]: a for a in tok.get("added_tokens", [])}
    n_tokens = max([*normal, *added]) + 1
    if n_tokens > n_vocab:
        raise ConfigError(f"{path}: {n_tokens} tokens but config vocab_size is {n_vocab}")
    tokens, types = [], []
    for i in range(n_vocab):
        if i in added:
            a = added[i]
            special = a.get("special") or _LOOKS_SPECIAL.match(a["content"])
            tokens.append(a["content"])
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        elif i in normal:
            tokens.append(normal[i])
            types.append(gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    return tokens, types


def _add_hparams(writer: Any, config: dict) -> None:
    """The Qwen2 hyperparameters (and rope scaling) of ``config`` as GGUF metadata."""
    import gguf

    rope = config.get("rope_parameters") or {}
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config.get("num_key_value_heads", config["num_attention_heads"]))
    writer.add_rope_freq_base(float(config.get("rope_theta") or rope.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    scaling = config.get("rope_scaling") or rope
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind in ("linear", "yarn"):
        writer.add_rope_scaling_type(gguf.RopeScalingType(kind))
        writer.add_rope_scaling_factor(float(scaling["factor"]))
        if "original_max_position_embeddings" in scaling:
            writer.add_rope_scaling_orig_ctx_len(int(scaling["original_max_position_embeddings"]))
    elif kind != "default":
        raise ConfigError(f"rope scaling '{kind}' is not supported by l1lite's converter; use --llama-cpp DIR")


def export_gguf(model_dir: str | Path, out_path: str | Path, force: bool = False, name: str | None = None) -> Path:
    """Write an f16 GGUF of a Qwen2 Hugging Face folder (safetensors + tokenizer.json), streaming tensors.

    2-D weights are stored as F16, 1-D tensors (norms, biases) as F32, like llama.cpp's converter.

    Args:
        model_dir (`str` or `Path`):
            Hugging Face model folder: ``config.json``, ``*.safetensors`` and a byte-level BPE ``tokenizer.json``.
        out_path (`str` or `Path`):
            The GGUF file to write (atomically).
        force (`bool`, *optional*, defaults to `False`):
            Overwrite an existing ``out_path``.
        name (`str` or `None`, *optional*, defaults to `None`):
            ``general.name`` in the GGUF; the folder's name when `None`.

    Returns:
        `Path`: ``out_path``.
    """
    import gguf
    import torch

    model_dir, out_path = Path(model_dir), Path(out_path)
    config = load_hf_config(model_dir)
    n_blocks = config["num_hidden_layers"]
    index = safetensors_index(model_dir)
    tokens, types = _vocab(model_dir, config["vocab_size"])
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=len(tokens))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, n_blocks)

    plan = []  # (gguf name, hf name, numpy dtype)
    for hf_name, (_, _, info) in index.items():
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ConfigError(f"{model_dir}: cannot map tensor '{hf_name}' to a GGUF name")
        plan.append((gguf_name, hf_name, np.float16 if len(info["shape"]) > 1 else np.float32))

    with atomic_path(out_path, force) as tmp:
        writer = gguf.GGUFWriter(tmp, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.QWEN2])
        try:
            writer.add_type("model")
            writer.add_name(name or model_dir.name)
            _add_hparams(writer, config)
            writer.add_tokenizer_model("gpt2")
            writer.add_tokenizer_pre(PRE_TOKENIZER)
            writer.add_token_list(tokens)
            writer.add_token_types(types)
            special.add_to_gguf(writer, quiet=True)
            for gguf_name, hf_name, dtype in plan:
                shape = index[hf_name][2]["shape"]
                nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
                writer.add_tensor_info(gguf_name, shape, np.dtype(dtype), nbytes)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for _, hf_name, dtype in plan:
                tensor = _read_tensor(*index[hf_name])
                tensor = tensor.to(torch.float16 if dtype == np.float16 else torch.float32)
                writer.write_tensor_data(tensor.numpy())
                del tensor
        finally:
            writer.close()
    return out_path


# ---------------------------------------------------------------- llama.cpp's converter


def llama_cpp_convert(llama_cpp_dir: str | Path, model_dir: Path, out_path: Path, force: bool) -> Path:
    """Convert with a llama.cpp checkout's own ``convert_hf_to_gguf.py`` (architectures l1lite does not cover).

    Args:
        llama_cpp_dir (`str` or `Path`):
            A llama.cpp checkout holding ``convert_hf_to_gguf.py``.
        model_dir (`Path`):
            Hugging Face model folder to convert.
        out_path (`Path`):
            The f16 GGUF file to write (atomically).
        force (`bool`):
            Overwrite an existing ``out_path``.

    Returns:
        `Path`: ``out_path``.
    """
    import subprocess
    import sys

    script = Path(llama_cpp_dir) / "convert_hf_to_gguf.py"
    if not script.is_file():
        raise ConfigError(f"--llama-cpp {llama_cpp_dir}: no convert_hf_to_gguf.py there")
    with atomic_path(out_path, force) as tmp:
        cmd = [sys.executable, str(script), str(model_dir), "--outfile", str(tmp), "--outtype", "f16"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"llama.cpp converter failed: {tail[0]}")
    return out_path
