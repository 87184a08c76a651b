"""Merge a LoRA adapter into its base model and export GGUF (f16 / q8_0 / q4_k_m) plus an Ollama Modelfile.

The f16 GGUF is written by gguf-py tensor by tensor straight from the safetensors files (peak memory
stays near the largest tensor, not the model); quantized files come from llama.cpp's own quantizer.
Every output is written atomically and never overwritten without ``force``.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from pathlib import Path

import numpy as np

from l1lite.config import ConfigError
from l1lite.files import atomic_path

QUANT_TYPES = ("f16", "q8_0", "q4_k_m")
SUPPORTED_ARCHS = ("Qwen2ForCausalLM",)
PRE_TOKENIZER = "deepseek-r1-qwen"  # llama.cpp's name for R1-Distill-Qwen's pre-tokenizer split
_LOOKS_SPECIAL = re.compile(r"^<[|｜].*[|｜]>$")  # <|...|> and <｜...｜> control tokens


# ---------------------------------------------------------------- safetensors, read one tensor at a time


def _safetensors_index(model_dir: Path) -> dict[str, tuple[Path, int, dict]]:
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


def _read_tensor(path: Path, start: int, info: dict):
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


def _load_config(model_dir: Path) -> dict:
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


def _add_hparams(writer, config: dict) -> None:
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
    """
    import gguf
    import torch

    model_dir, out_path = Path(model_dir), Path(out_path)
    config = _load_config(model_dir)
    n_blocks = config["num_hidden_layers"]
    index = _safetensors_index(model_dir)
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


# ---------------------------------------------------------------- merge


def _name_key(ref: str | Path) -> str:
    """Loose identity of a model reference: hub id, local folder or hub-cache snapshot -> normalized name."""
    text = str(ref).rstrip("/")
    cache = re.search(r"models--[^/]+--([^/]+)", text)
    name = cache.group(1) if cache else Path(text).name
    name = re.sub(r"(-unsloth)?(-bnb)?-4bit$", "", name.lower())
    return re.sub(r"[^a-z0-9]", "", name)


def _resolve_dir(ref: str | Path) -> Path | None:
    """A local folder for a model reference: the folder itself, or the hub cache snapshot of an id (no download)."""
    if Path(ref).is_dir():
        return Path(ref)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(ref), local_files_only=True))
    except Exception:
        return None


def check_adapter(base: str | Path, adapter: str | Path) -> None:
    """Raise a one-line :class:`ConfigError` if ``adapter`` was not trained on ``base`` (name or tensor shapes)."""
    adapter = Path(adapter)
    cfg_path = adapter / "adapter_config.json"
    if not cfg_path.is_file():
        raise ConfigError(f"{adapter}: no adapter_config.json (not a PEFT adapter folder)")
    trained_on = json.loads(cfg_path.read_text()).get("base_model_name_or_path") or ""
    if trained_on and _name_key(trained_on) != _name_key(base):
        raise ConfigError(f"adapter {adapter} was trained on '{trained_on}', not on base '{base}'")
    base_dir = _resolve_dir(base)
    if base_dir is None or not list(base_dir.glob("*.safetensors")):
        return
    base_shapes = {k: v[2]["shape"] for k, v in _safetensors_index(base_dir).items()}
    for key, (_, _, info) in _safetensors_index(adapter).items():
        found = re.match(r"base_model\.model\.(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$", key)
        if not found:
            continue
        module, ab = found.groups()
        target = base_shapes.get(f"{module}.weight")
        if target is None:
            raise ConfigError(f"adapter {adapter} targets '{module}', which base '{base}' does not have")
        out_features, in_features = target
        if (ab == "A" and info["shape"][1] != in_features) or (ab == "B" and info["shape"][0] != out_features):
            raise ConfigError(
                f"adapter {adapter}: lora_{ab} of '{module}' has shape {info['shape']}, "
                f"which does not fit base weight {target}"
            )


def _load_dequantized(base: str | Path):
    """Load ``base`` in float32 with each Linear weight replaced by its nf4 round trip (as the adapter saw it).

    The 4-bit copy is loaded through bitsandbytes (``BitsAndBytesConfig``, nf4, double quantization, as in
    QLoRA training) and each ``Linear4bit`` is dequantized; nothing is re-quantized.
    """
    import bitsandbytes as bnb
    import torch
    from transformers import AutoModelForCausalLM

    from l1lite.backends import nf4_config

    q_model = AutoModelForCausalLM.from_pretrained(
        base, quantization_config=nf4_config(torch.bfloat16), device_map="cpu"
    )
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    modules = dict(model.named_modules())
    for name, module in q_model.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            weight = bnb.functional.dequantize_4bit(module.weight.data, module.weight.quant_state)
            modules[name].weight.data = weight.float().reshape(modules[name].weight.shape)
    return model


def merge_adapter(
    base: str | Path,
    adapter: str | Path | None,
    out_dir: str | Path,
    merge_into: str = "base16",
    force: bool = False,
) -> Path:
    """Merge a LoRA ``adapter`` into ``base`` and save safetensors + tokenizer to ``out_dir``.

    ``merge_into="base16"`` merges into the 16-bit base (in float32, saved in the base's dtype);
    ``"dequantized"`` merges into the dequantized nf4 weights the adapter was trained against.
    ``adapter=None`` saves the base as is.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if merge_into not in ("base16", "dequantized"):
        raise ConfigError(f"merge_into must be 'base16' or 'dequantized', got '{merge_into}'")
    if adapter is not None:
        check_adapter(base, adapter)
    config = AutoConfig.from_pretrained(base)
    if getattr(config, "quantization_config", None) is not None:
        raise ConfigError(
            f"base '{base}' is an already quantized checkpoint; give the 16-bit base model "
            "(--merge-into dequantized reproduces its nf4 weights)"
        )
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or torch.float32
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        dtype = torch.bfloat16
    if merge_into == "dequantized":
        model = _load_dequantized(base)
    else:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model = model.to(dtype)
    tokenizer = AutoTokenizer.from_pretrained(
        adapter if adapter and (Path(adapter) / "tokenizer.json").is_file() else base
    )
    with atomic_path(out_dir, force) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)


# ---------------------------------------------------------------- quantize, Modelfile


def quantize_gguf(f16_path: str | Path, out_path: str | Path, qtype: str, force: bool = False) -> Path:
    """Quantize an f16 GGUF to ``q8_0`` or ``q4_k_m`` with llama.cpp's quantizer (llama-cpp-python)."""
    import llama_cpp

    ftypes = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}
    if qtype not in ftypes:
        raise ConfigError(f"unknown quantization type '{qtype}' (choose from {', '.join(ftypes)})")
    out_path = Path(out_path)
    log = logging.getLogger("llama-cpp-python")  # llama.cpp's log goes through this logger
    level = log.level
    with atomic_path(out_path, force) as tmp:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftypes[qtype]
        log.setLevel(logging.ERROR)
        try:
            rc = llama_cpp.llama_model_quantize(str(f16_path).encode(), str(tmp).encode(), params)
        finally:
            log.setLevel(level)
        if rc != 0 or not tmp.is_file():
            raise RuntimeError(f"llama.cpp failed to quantize {f16_path} to {qtype} (code {rc})")
    return out_path


# R1 chat template in Ollama's Go-template syntax. Thinking on (default): the turn opens "<think>\n" exactly as
# in training; `think: false` closes an empty thought. Earlier assistant turns keep only their answer.
_OLLAMA_TEMPLATE = """{{- if .System }}{{ .System }}{{ end }}
{{- range $i, $m := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq $m.Role "user" }}<｜User｜>{{ $m.Content }}
{{- else if eq $m.Role "assistant" }}<｜Assistant｜>{{ $m.Content }}{{ if not $last }}<｜end▁of▁sentence｜>{{ end }}
{{- end }}
{{- if and $last (ne $m.Role "assistant") }}<｜Assistant｜>
{{- if and $.IsThinkSet (not $.Think) }}<think>

</think>

{{ else }}<think>
{{ end }}
{{- end }}
{{- end }}"""


def write_modelfile(gguf_path: str | Path, out_dir: str | Path, num_ctx: int = 8192, force: bool = False) -> Path:
    """Write ``out_dir/Modelfile`` for ``ollama create NAME -f Modelfile`` (R1 template, stops, sampling)."""
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    source = f"./{gguf_path.name}" if gguf_path.parent.resolve() == out_dir.resolve() else str(gguf_path.resolve())
    text = f"""# Ollama Modelfile written by `l1lite export`.  Create the model with:
#   ollama create NAME -f Modelfile
# Ask for a thinking budget by appending "Think for N tokens." to the question, e.g.
#   ollama run NAME "What is 7 * 8? Think for 512 tokens."
# ("Think for maximum N tokens." asks for at most N tokens with an L1-Max model.)
FROM {source}
TEMPLATE \"\"\"{_OLLAMA_TEMPLATE}\"\"\"
PARAMETER stop "<｜end▁of▁sentence｜>"
PARAMETER stop "<｜User｜>"
PARAMETER temperature 0.6
PARAMETER top_p 0.95
PARAMETER num_ctx {num_ctx}
"""
    path = out_dir / "Modelfile"
    with atomic_path(path, force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- verification


VERIFY_QUESTIONS = (
    "What is 17 * 23?",
    "Solve $x^2 - 5x + 6 = 0$ for $x$.",
    "A train travels 120 km in 1.5 hours. What is its average speed?",
)


def _verify_prompts(tokenizer) -> list[list[int]]:
    from l1lite.config import PromptConfig

    prompt = PromptConfig()
    ids = []
    for question in VERIFY_QUESTIONS:
        content = f"{question} {prompt.instruction} {prompt.exact_template.format(n=512)}"
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
        )
        ids.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids


def _hf_greedy(model, ids: list[int], n: int, n_real: int) -> list[int]:
    import torch

    out, past, step = [], None, torch.tensor([ids])
    with torch.no_grad():
        for _ in range(n):
            res = model(step, past_key_values=past, use_cache=True)
            past = res.past_key_values
            out.append(int(res.logits[0, -1, :n_real].argmax()))
            step = torch.tensor([[out[-1]]])
    return out


def _llama_greedy(llm, ids: list[int], n: int, n_real: int) -> list[int]:
    llm.reset()
    llm.eval(ids)
    out = []
    for _ in range(n):
        out.append(int(np.argmax(llm.scores[llm.n_tokens - 1, :n_real])))
        llm.eval([out[-1]])
    return out


def verify_gguf(
    hf_dir: str | Path,
    gguf_path: str | Path,
    n_greedy: int = 32,
    rel_tol: float = 0.05,
    min_top1: float = 0.98,
    hf_model=None,
) -> dict:
    """Compare a GGUF (in llama.cpp) with the Hugging Face model it came from on chat-formatted prompts.

    Reports the max abs logit difference over the real vocabulary, top-1 agreement over all prompt
    positions and whether the ``n_greedy``-token greedy continuations are identical. ``ok`` holds when
    the continuations match, top-1 agreement >= ``min_top1`` and the max difference is within
    ``rel_tol`` of the largest |logit|.
    """
    import llama_cpp
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = hf_model or AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    n_real = len(tokenizer)
    prompts = _verify_prompts(tokenizer)
    n_ctx = max(len(p) for p in prompts) + n_greedy + 16
    llm = llama_cpp.Llama(str(gguf_path), n_ctx=n_ctx, logits_all=True, verbose=False, seed=0)
    try:
        max_diff, max_logit, agree, total, greedy_same = 0.0, 0.0, 0, 0, []
        for ids in prompts:
            with torch.no_grad():
                ref = model(torch.tensor([ids])).logits[0, :, :n_real].float().numpy()
            llm.reset()
            llm.eval(ids)
            got = np.asarray(llm.scores[: len(ids), :n_real], dtype=np.float32)
            max_diff = max(max_diff, float(np.abs(ref - got).max()))
            max_logit = max(max_logit, float(np.abs(ref).max()))
            agree += int((ref.argmax(-1) == got.argmax(-1)).sum())
            total += len(ids)
            greedy_same.append(_hf_greedy(model, ids, n_greedy, n_real) == _llama_greedy(llm, ids, n_greedy, n_real))
    finally:
        llm.close()
    top1 = agree / total
    result = {
        "gguf": str(gguf_path),
        "prompts": len(prompts),
        "max_abs_logit_diff": max_diff,
        "max_abs_logit": max_logit,
        "top1_agreement": top1,
        "greedy_identical": all(greedy_same),
        "greedy_identical_per_prompt": greedy_same,
    }
    result["ok"] = bool(all(greedy_same) and top1 >= min_top1 and max_diff <= rel_tol * max(max_logit, 1.0))
    return result


# ---------------------------------------------------------------- whole export


class VerificationError(RuntimeError):
    """The f16 GGUF does not reproduce the Hugging Face model."""


def _llama_cpp_convert(llama_cpp_dir: str | Path, model_dir: Path, out_path: Path, force: bool) -> Path:
    """Convert with a llama.cpp checkout's own ``convert_hf_to_gguf.py`` (architectures l1lite does not cover)."""
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


def _default_name(base: str | Path, adapter: str | Path | None) -> str:
    """The adapter's (or base's) folder name; for ``RUN/adapter`` from ``l1lite train``, the run's name."""
    from l1lite.train import ADAPTER_DIR

    ref = Path(str(adapter if adapter is not None else base).rstrip("/"))
    if adapter is not None and ref.name == ADAPTER_DIR and ref.parent.name:
        ref = ref.parent
    return re.sub(r"[^A-Za-z0-9._-]+", "-", ref.name) or "model"


def export(
    base: str | Path,
    adapter: str | Path | None,
    out: str | Path,
    quant: tuple[str, ...] | list[str] = ("f16",),
    name: str | None = None,
    merge_into: str = "base16",
    force: bool = False,
    verify: bool = True,
    llama_cpp: str | Path | None = None,
) -> dict:
    """Merge, convert to GGUF (one file per type in ``quant``), write the Modelfile and verify.

    Returns ``{"merged", "gguf": {type: path}, "modelfile", "verify"}``; raises
    :class:`VerificationError` (after writing ``verify.json``) if the f16 GGUF fails verification.
    """
    quant = tuple(dict.fromkeys(quant))
    bad = [q for q in quant if q not in QUANT_TYPES]
    if bad or not quant:
        raise ConfigError(f"unknown GGUF type '{bad[0] if bad else ''}' (choose from {', '.join(QUANT_TYPES)})")
    if merge_into not in ("base16", "dequantized"):
        raise ConfigError(f"--merge-into must be 'base16' or 'dequantized', got '{merge_into}'")
    if llama_cpp is None and (base_dir := _resolve_dir(base)) is not None and (base_dir / "config.json").is_file():
        _load_config(base_dir)  # unsupported architecture: fail before any work
    out = Path(out)
    name = name or _default_name(base, adapter)
    paths = {q: out / f"{name}-{q}.gguf" for q in quant}
    finals = [out / "merged", *paths.values(), out / "Modelfile"] + ([out / "verify.json"] if verify else [])
    existing = [str(p) for p in finals if p.exists()]
    if existing and not force:
        raise ConfigError(f"{existing[0]} exists (use --force to overwrite)")
    if adapter is not None:
        check_adapter(base, adapter)

    merged = merge_adapter(base, adapter, out / "merged", merge_into=merge_into, force=force)
    f16 = paths.get("f16", out / f".{name}-f16.intermediate.gguf")
    if llama_cpp is not None:
        _llama_cpp_convert(llama_cpp, merged, f16, force=True)
    else:
        export_gguf(merged, f16, force=True, name=name)
    try:
        for q in quant:
            if q != "f16":
                quantize_gguf(f16, paths[q], q, force=force)
    finally:
        if "f16" not in quant:
            f16.unlink(missing_ok=True)
    smallest = next(paths[q] for q in ("q4_k_m", "q8_0", "f16") if q in paths)
    modelfile = write_modelfile(smallest, out, force=force)
    result = {"merged": merged, "gguf": paths, "modelfile": modelfile, "verify": None}
    if verify:
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
        result["verify"] = {q: verify_gguf(merged, paths[q], hf_model=model) for q in quant}
        with atomic_path(out / "verify.json", force) as tmp:
            tmp.write_text(json.dumps(result["verify"], indent=2))
        if "f16" in quant and not result["verify"]["f16"]["ok"]:
            v = result["verify"]["f16"]
            raise VerificationError(
                f"f16 GGUF does not match the merged model: max |logit diff| {v['max_abs_logit_diff']:.4g}, "
                f"top-1 agreement {v['top1_agreement']:.3f}, greedy identical {v['greedy_identical']}"
            )
    return result


# ---------------------------------------------------------------- CLI


def add_arguments(parser) -> None:
    """CLI: ``l1lite export --base ID_OR_DIR --adapter DIR --out DIR [--quant f16,q8_0,q4_k_m] ...``."""
    parser.add_argument("--base", required=True, help="base model: hub id or local folder")
    parser.add_argument("--adapter", default=None, help="LoRA adapter folder (omit to export the base as is)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quant", default="f16", help="comma-separated GGUF types: f16, q8_0, q4_k_m")
    parser.add_argument("--name", default=None, help="file name stem (default: adapter or base folder name)")
    parser.add_argument("--merge-into", default="base16", choices=["base16", "dequantized"])
    parser.add_argument("--llama-cpp", default=None, metavar="DIR", help="use this llama.cpp checkout's converter")
    parser.add_argument("--no-verify", action="store_true", help="skip comparing the GGUFs with the merged model")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")


def run(args) -> int:
    """CLI entry point."""
    from l1lite.files import OutputExistsError

    quant = tuple(q.strip() for q in args.quant.split(",") if q.strip())
    try:
        result = export(
            args.base,
            args.adapter,
            args.out,
            quant=quant,
            name=args.name,
            merge_into=args.merge_into,
            force=args.force,
            verify=not args.no_verify,
            llama_cpp=args.llama_cpp,
        )
    except OutputExistsError as e:
        raise ConfigError(str(e)) from None
    except VerificationError as e:
        print(f"l1lite export: error: {e}")
        return 1
    print(f"merged model: {result['merged']}")
    for q, path in result["gguf"].items():
        line = f"{q:>7}: {path}"
        if result["verify"]:
            v = result["verify"][q]
            line += (
                f"  max|dlogit| {v['max_abs_logit_diff']:.4f}  top-1 {v['top1_agreement']:.3f}"
                f"  greedy {'identical' if v['greedy_identical'] else 'differs'}"
            )
        print(line)
    print(f"Modelfile: {result['modelfile']}  (ollama create NAME -f {result['modelfile']})")
    return 0
