"""``l1lite plan``: the peak memory and the time of a training run on one GPU, before anything loads.

Owns the memory and time model of a run (:func:`plan`), the GPU table (:data:`GPUS`, ``NGB`` for any other size),
the model shapes it needs (a local ``config.json``, else :data:`SHAPES`), the verdict with the nearest settings that
fit or finish, and the check ``l1lite train`` runs before loading the model (:func:`check_plan`).

Memory is modelled from what TRL 1.14.2's GRPOTrainer does with transformers, PEFT and accelerate:

- static: the base weights at their precision (bnb: nf4 decoder linears with double-quantized constants, the
  rest cast to fp32 by ``prepare_model_for_kbit_training``), LoRA weights (fp32), optimizer states, the CUDA context;
- generation (one ``generate`` call per generation round for ``per_device_train_batch_size x
  steps_per_generation`` sequences): the KV cache, the prefill and sampling transients; or, with
  ``use_vllm`` colocate, vLLM's reservation (``vllm_gpu_memory_utilization`` of the card; with vLLM rollouts,
  ``rollouts.gpu_memory_utilization``, held through training);
- training (one micro-batch of ``per_device_train_batch_size`` sequences): activations (every layer's, or with
  gradient checkpointing each layer's input plus one layer recomputed), the logits and their gradient, LoRA
  gradients. ``_get_per_token_logps_and_entropies`` runs the full lm_head over the completion (``logits_to_keep``);
  under mixed precision accelerate's ``convert_outputs_to_fp32`` turns those logits to fp32, which TRL's fused
  log-softmax kernel saves for backward, so the peak holds them and their fp32 gradient (8 bytes per logit).
  On CPU (fp32, no kernel) TRL's fallback divides by the temperature (a copy) and the backward of its per-row
  ``logsumexp`` holds more copies (:data:`CPU_LOGIT_COPIES`).

The peak is the static part plus the larger of the two phases (the caching allocator reuses what generation frees).
Times come from each card's datasheet bandwidth and FLOP/s with stated efficiencies (:data:`GEN_BANDWIDTH_EFF`,
:data:`TRAIN_MFU`, :data:`HOST_SECONDS_PER_OP`): estimates until measured on the card. Imports only the core and,
for a GPU's own name and size, torch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from l1lite.core.config import PAPER_MODEL, ConfigError, TrainConfig, load_config
from l1lite.core.models import BUILTIN_PREFIX, SMOLLM2, TINY, local_dir
from l1lite.core.precision import precision_for
from l1lite.train.rollouts import engine_for

GIB = 2**30
MIB = 2**20
SESSION_HOURS = 12.0  # a free Colab or Kaggle session
HEADROOM = 0.9  # a plan fits when its peak is at most this share of the card (the rest: allocator fragmentation)
CUDA_CONTEXT = 0.5 * GIB  # CUDA context, cuBLAS workspace and kernels: outside torch's allocator, ~0.3-0.6 GiB

# Throughput assumptions, to be replaced by measurements on each card:
GEN_BANDWIDTH_EFF = 0.6  # share of datasheet memory bandwidth an eager HF decode step reaches (assumption)
VLLM_BANDWIDTH_EFF = 0.7  # the same for vLLM's CUDA-graph decode (assumption)
TRAIN_MFU = 0.35  # share of dense 16-bit tensor FLOP/s an eager HF LoRA forward/backward reaches (assumption)
HOST_SECONDS_PER_OP = 10e-6  # eager PyTorch host cost per op (dispatch, Python, launch) (assumption)
# aten ops per HF decode step with PEFT LoRA on all 7 projections: 77 + 89 per layer, counted with torch.profiler
# on CPU (l1lite:tiny: 255 ops for 2 layers, SmolLM2-135M: 2755 for 30); bnb's 4-bit linears add about two ops each
# (quantization state and dequantize: an assumption, not counted)
DECODE_OPS_FIXED, DECODE_OPS_PER_LAYER, BNB_OPS_PER_LAYER = 77, 89, 14
VLLM_STEP_FLOOR_S = 3e-3  # vLLM scheduler and sampling per decode step (assumption)
VLLM_SYNC_S = 3.0  # per optimizer step: LoRA merged into vLLM's weights, wake-up and sleep (assumption)
# CPU (fp32, TRL's fallback log-softmax): logits copies at the backward's peak: the saved temperature-scaled copy,
# the per-row logsumexp gradients and their stack (benchmarks/plan_memory.py measures 3.0-3.2 on SmolLM2-135M)
CPU_LOGIT_COPIES = 3.0
ENTROPY_CHUNK_ROWS = 128  # trl.trainer.utils.entropy_from_logits: rows per chunk (CPU fallback)
SFT_CHUNK_TOKENS, SFT_CHUNK_COPIES = 256, 5  # trl.trainer.sft_trainer._CHUNKED_LM_HEAD_CHUNK_SIZE; fp32 copies
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4 bits + an 8-bit absmax per 64 + an fp32 absmax per 256 blocks
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# TRL 1.14.2 GRPOConfig defaults the plan reads (tests check them against GRPOConfig); max_steps is l1lite's
TRAINER_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "num_generations": 8,
    "steps_per_generation": None,
    "generation_batch_size": None,
    "max_completion_length": 512,
    "num_iterations": 1,
    "beta": 0.0,
    "temperature": 1.0,
    "optim": "adamw_torch_fused",
    "use_vllm": False,
    "vllm_mode": "colocate",
    "vllm_gpu_memory_utilization": 0.3,
    "vllm_enable_sleep_mode": False,
    "max_steps": 100,
}


@dataclass(frozen=True)
class Gpu:
    """A card: memory (bytes), compute capability, datasheet bandwidth (bytes/s) and dense 16-bit FLOP/s."""

    name: str
    memory: int
    cc: float | None = None
    bandwidth: float | None = None
    flops: float | None = None
    cuda: bool = True


# Memory: what nvidia-smi reports (MiB, ECC on where the card has it). Bandwidth and dense (no sparsity) FP16/BF16
# tensor FLOP/s with FP32 accumulate: NVIDIA's datasheets and architecture whitepapers (T4, L4, A10, GA102 for the
# 3090, Ada for the 4090, A100 SXM4, H100 SXM5). AWS's A10G is an A10 at lower clocks: its FLOP/s are an upper
# bound. The T4 trains in fp16.
GPUS = {
    "T4": Gpu("T4", 15360 * MIB, 7.5, 320e9, 65e12),
    "L4": Gpu("L4", 23034 * MIB, 8.9, 300e9, 121e12),
    "A10G": Gpu("A10G", 23028 * MIB, 8.6, 600e9, 125e12),
    "3090": Gpu("3090", 24576 * MIB, 8.6, 936e9, 71e12),
    "4090": Gpu("4090", 24564 * MIB, 8.9, 1008e9, 165e12),
    "A100-40": Gpu("A100-40", 40960 * MIB, 8.0, 1555e9, 312e12),
    "A100-80": Gpu("A100-80", 81920 * MIB, 8.0, 2039e9, 312e12),
    "H100": Gpu("H100", 81559 * MIB, 9.0, 3350e9, 989e12),
}
CUSTOM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*G(?:i)?B\s*$", re.IGNORECASE)


def parse_gpu(spec: str) -> Gpu:
    """The card ``spec`` names: a key of :data:`GPUS` (any case, e.g. ``A100-80``) or ``NGB``, N GiB of memory with
    no throughput (e.g. ``24GB``)."""
    for key, gpu in GPUS.items():
        if spec.strip().upper() == key.upper():
            return gpu
    m = CUSTOM.match(spec)
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"unknown GPU '{spec}' (choose from {', '.join(GPUS)}, or a size such as 24GB)")
    size = float(m.group(1))
    return Gpu(f"{size:g}GB", int(size * GIB))


def gpu_from_name(name: str, memory: int) -> Gpu:
    """The table's figures for a CUDA device named ``name`` with ``memory`` bytes, else size only.

    Args:
        name: ``torch.cuda.get_device_name()``, e.g. ``Tesla T4`` or ``NVIDIA A100-SXM4-80GB``.
        memory: ``total_memory`` of the device, which replaces the table's figure.
    """
    upper = name.upper()
    key = next((k for k in ("T4", "L4", "A10G", "3090", "4090", "H100") if re.search(rf"\b{k}\b", upper)), None)
    if key is None and "A100" in upper:
        key = "A100-80" if memory > 48 * GIB else "A100-40"
    base = GPUS[key] if key else Gpu(name, memory)
    return replace(base, name=name, memory=memory)


def cpu_device() -> Gpu:
    """This machine's CPU and RAM as the device (the plain backend in fp32; no throughput figures)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 0
    return Gpu("CPU", memory, cuda=False)


@dataclass(frozen=True)
class Shape:
    """A decoder-only transformer's shape (Qwen2 / Llama layout)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool = False
    qkv_bias: bool = False

    def linear_params(self) -> int:
        """Parameters of one layer's seven projections."""
        return sum(i * o for i, o in map(self.dims, PROJECTIONS))

    def other_params(self) -> int:
        """Embeddings, lm_head (unless tied), norms and biases."""
        per_layer = 2 * self.hidden + (self.heads + 2 * self.kv_heads) * self.head_dim * self.qkv_bias
        return self.vocab * self.hidden * (1 if self.tied else 2) + self.layers * per_layer + self.hidden

    def params(self) -> int:
        """All parameters."""
        return self.layers * self.linear_params() + self.other_params()

    def dims(self, module: str) -> tuple[int, int]:
        """``(in, out)`` features of projection ``module``."""
        h, q, kv, f = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.intermediate
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, f),
            "up_proj": (h, f),
            "down_proj": (f, h),
        }[module]

    def kv_bytes_per_token(self, dtype_bytes: float) -> float:
        """KV cache bytes per token over all layers."""
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


# Shapes of the models the presets name, for when no config.json is at hand (hub ids not in the local cache)
SHAPES = {
    PAPER_MODEL: Shape(1536, 28, 12, 2, 128, 8960, 151936, tied=False, qkv_bias=True),
    TINY: Shape(64, 2, 4, 2, 16, 128, 512, tied=False, qkv_bias=True),
    SMOLLM2: Shape(576, 30, 9, 3, 64, 1536, 49152, tied=True, qkv_bias=False),
}


def shape_from_config(config: dict[str, Any]) -> Shape:
    """A :class:`Shape` from a transformers ``config.json`` mapping."""
    heads = config["num_attention_heads"]
    hidden = config["hidden_size"]
    return Shape(
        hidden=hidden,
        layers=config["num_hidden_layers"],
        heads=heads,
        kv_heads=config.get("num_key_value_heads") or heads,
        head_dim=config.get("head_dim") or hidden // heads,
        intermediate=config["intermediate_size"],
        vocab=config["vocab_size"],
        tied=bool(config.get("tie_word_embeddings", False)),
        qkv_bias=config.get("model_type") == "qwen2" or bool(config.get("attention_bias", False)),
    )


def model_shape(name: str) -> Shape:
    """The shape of ``model.name``: a local folder's (or the hub cache's) ``config.json``, else :data:`SHAPES`.

    Downloads, builds and converts nothing; a model neither local nor in the table is a :class:`ConfigError`.
    """
    if not name.startswith(BUILTIN_PREFIX) and not name.endswith(".gguf"):
        folder = local_dir(name)
        if folder is not None and (folder / "config.json").is_file():
            return shape_from_config(json.loads((folder / "config.json").read_text()))
    if name in SHAPES:
        return SHAPES[name]
    raise ConfigError(f"no shape known for model '{name}': plan it from a local folder with a config.json")


@dataclass(frozen=True)
class Settings:
    """The trainer settings a plan depends on, resolved as TRL's GRPOConfig does (one process)."""

    per_device: int
    accumulation: int
    generations: int
    steps_per_generation: int
    completion: int
    prompt: int
    iterations: int
    beta: float
    temperature: float
    optim: str
    checkpointing: bool
    use_vllm: bool
    vllm_mode: str
    vllm_share: float
    vllm_sleep: bool
    max_steps: int

    @property
    def sequences(self) -> int:
        """Sequences generated at once (one generation round on this device)."""
        return self.per_device * self.steps_per_generation

    @property
    def prompts_per_step(self) -> int:
        """Distinct prompts per optimizer step."""
        return max(1, round(self.sequences // self.generations * self.rounds_per_step))

    @property
    def rounds_per_step(self) -> float:
        """Generation rounds per optimizer step."""
        return self.accumulation / (self.steps_per_generation * self.iterations)


def _number(trainer: dict[str, Any], key: str, kind: type) -> Any:
    value = trainer.get(key, TRAINER_DEFAULTS.get(key))
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool or not isinstance(value, (int, float, bool)):
        raise ConfigError(f"config key 'trainer.{key}' must be {kind.__name__}, got {value!r}")
    return kind(value)


def settings(cfg: TrainConfig) -> Settings:
    """The :class:`Settings` of ``cfg`` (TRL's defaults for keys its ``trainer`` section leaves out)."""
    t = cfg.trainer
    per_device = _number(t, "per_device_train_batch_size", int)
    accumulation = _number(t, "gradient_accumulation_steps", int)
    generations = _number(t, "num_generations", int)
    spg = _number(t, "steps_per_generation", int)
    gbs = _number(t, "generation_batch_size", int)
    if min(per_device, accumulation, generations) < 1:
        raise ConfigError("trainer: per_device_train_batch_size, gradient_accumulation_steps and num_generations >= 1")
    if spg is None:
        spg = gbs // per_device if gbs else accumulation
    return Settings(
        per_device=per_device,
        accumulation=accumulation,
        generations=generations,
        steps_per_generation=max(1, spg),
        completion=_number(t, "max_completion_length", int),
        prompt=cfg.data.max_prompt_tokens,
        iterations=_number(t, "num_iterations", int),
        beta=_number(t, "beta", float),
        temperature=_number(t, "temperature", float),
        optim=str(t.get("optim", TRAINER_DEFAULTS["optim"])),
        checkpointing=bool(t.get("gradient_checkpointing", cfg.model.gradient_checkpointing)),
        use_vllm=bool(t.get("use_vllm", False)),
        vllm_mode=str(t.get("vllm_mode", TRAINER_DEFAULTS["vllm_mode"])),
        vllm_share=_number(t, "vllm_gpu_memory_utilization", float),
        vllm_sleep=bool(t.get("vllm_enable_sleep_mode", False)),
        max_steps=_number(t, "max_steps", int),
    )


@dataclass(frozen=True)
class Precision:
    """Bytes per element of each kind of tensor, for a backend on a device."""

    label: str
    linear: float  # decoder projections' weights, per parameter
    other: float  # embeddings, lm_head, norms, biases
    act: int  # activations inside a layer (projections, attention, MLP)
    residual: int  # the residual stream: each checkpointed layer input
    norm: int  # the input each RMSNorm saves (HF upcasts to fp32)
    kv: int  # KV cache
    amp: bool  # accelerate mixed precision: the logits come back in fp32 (convert_outputs_to_fp32)
    offload_checkpoints: bool = False  # Unsloth keeps the checkpointed inputs in CPU memory
    norm_output_fp32: bool = False  # fp32 norms feed the projections: autocast copies their input per LoRA


def precision(backend: str, device: Gpu, load_in_4bit: bool = True) -> Precision:
    """The :class:`Precision` of ``backend`` (``plain``, ``bnb``, ``unsloth``; ``auto`` plans as bnb on a GPU)."""
    if not device.cuda:
        return Precision("fp32 (CPU)", 4, 4, 4, 4, 4, 4, amp=False)
    half = "fp16" if precision_for(device.cc) == "float16" else "bf16"  # an unknown capability: bf16
    if backend == "plain":
        return Precision(f"{half} weights and autocast", 2, 2, 2, 2, 4, 2, amp=True)
    if backend == "unsloth":
        linear = NF4_BYTES if load_in_4bit else 2
        return Precision(f"nf4 + {half} (Unsloth)", linear, 2, 2, 2, 4, 2, amp=True, offload_checkpoints=True)
    # bnb (and auto without Unsloth): prepare_model_for_kbit_training casts every non-4-bit weight to fp32, so the
    # embeddings and the residual stream are fp32; the 4-bit matmuls compute in half precision
    return Precision(
        f"nf4 linears, fp32 embeddings, {half} compute", NF4_BYTES, 4, 2, 4, 4, 2, amp=True, norm_output_fp32=True
    )


def lora_params(shape: Shape, r: int, targets: list[str]) -> int:
    """Trainable LoRA parameters: ``r x (in + out)`` per targeted projection per layer."""
    modules = PROJECTIONS if "all-linear" in targets else [m for m in PROJECTIONS if m in targets]
    return shape.layers * sum(r * sum(shape.dims(m)) for m in modules)


def optimizer_bytes_per_param(optim: str) -> float:
    """Optimizer state bytes per trainable parameter (AdamW fp32: 8; 8-bit Adam: 2; SGD without momentum: 0)."""
    name = optim.lower()
    if "sgd" in name:
        return 0.0
    if "8bit" in name:
        return 2.0
    if "adafactor" in name:
        return 4.0  # factored second moments: well under a full state; counted as one fp32 state, an upper bound
    return 8.0


def layer_elements(
    shape: Shape, r: int, targets: list[str], tokens_per_seq: int, input_copies: bool = False
) -> dict[str, float]:
    """Elements one decoder layer saves for backward per token, by dtype class (``act``, ``norm``, ``mask``).

    Counted from what autograd saves in transformers 5.17's Qwen2/Llama layer with PEFT LoRA and SDPA (with left
    padding, so an attention mask): each RMSNorm's input and rsqrt; the inputs of the LoRA-targeted projections
    (the A matrices need them) and each A's output (``r``); q, k and v after ``repeat_kv`` and the log-sum-exp per
    head (SDPA); gate, up and silu(gate) (the MLP's products); the float mask SDPA converts per call (one row of
    ``tokens_per_seq`` per token). ``input_copies``: autocast casts an fp32 input once per LoRA matrix that reads
    it (the bnb backend's fp32 norms), so q, k and v (and gate and up) each save their own half-precision copy.
    """
    h, f = shape.hidden, shape.intermediate
    q = shape.heads * shape.head_dim
    modules = set(PROJECTIONS) if "all-linear" in targets else set(targets) & set(PROJECTIONS)
    qkv, gate_up = modules & {"q_proj", "k_proj", "v_proj"}, modules & {"gate_proj", "up_proj"}
    inputs = h * (len(qkv) if input_copies else min(len(qkv), 1)) + (q if "o_proj" in modules else 0)
    inputs += h * (len(gate_up) if input_copies else min(len(gate_up), 1)) + (f if "down_proj" in modules else 0)
    act = inputs + r * len(modules) + 3 * q + 3 * f
    return {"act": act, "norm": 2 * h + 2 + shape.heads, "mask": tokens_per_seq}


@dataclass
class Component:
    """One line of the memory table."""

    name: str
    phase: str  # static | generation | training
    bytes: float
    note: str = ""


@dataclass
class Plan:
    """Memory components, peak, time and verdict of a run on a device."""

    config: str
    device: Gpu
    backend: str
    precision: Precision
    shape: Shape
    settings: Settings
    lora: int
    components: list[Component]
    hindsight: list[Component] = field(default_factory=list)
    step_seconds: dict[str, float] | None = None
    hindsight_seconds: float = 0.0
    suggestions: list[str] = field(default_factory=list)

    def phase(self, name: str, components: list[Component] | None = None) -> float:
        """Bytes of one phase."""
        return sum(c.bytes for c in (self.components if components is None else components) if c.phase == name)

    @property
    def peak(self) -> float:
        """Planned peak bytes: static plus the larger phase, for GRPO and for the hindsight start."""
        return self.stage_peak(self.peak_stage()) if self.settings.max_steps or self.hindsight else 0.0

    @property
    def budget(self) -> float:
        """Bytes a run may plan to use on the device (:data:`HEADROOM` of a GPU; all of the CPU's RAM)."""
        return self.device.memory * (HEADROOM if self.device.cuda else 1.0)

    @property
    def fits(self) -> bool:
        """Whether the peak fits the device."""
        return self.peak <= self.budget

    @property
    def total_seconds(self) -> float | None:
        """Planned wall time of the run (hindsight start and GRPO steps), or None without throughput figures."""
        if self.step_seconds is None:
            return None
        return self.hindsight_seconds + self.settings.max_steps * sum(self.step_seconds.values())

    @property
    def finishes(self) -> bool | None:
        """Whether the run ends within one :data:`SESSION_HOURS` session (None: no time planned)."""
        total = self.total_seconds
        return None if total is None else total <= SESSION_HOURS * 3600

    def stage_peak(self, components: list[Component]) -> float:
        """Peak bytes of one stage (GRPO or the hindsight start): static plus its larger phase."""
        return self.phase("static", components) + max(
            self.phase("generation", components), self.phase("training", components)
        )

    def peak_stage(self) -> list[Component]:
        """The components of the stage that sets the peak."""
        if not self.hindsight:
            return self.components
        if not self.settings.max_steps:
            return self.hindsight
        return max(self.components, self.hindsight, key=self.stage_peak)

    def largest(self) -> Component:
        """The largest component of the phase that sets the peak."""
        comps = self.peak_stage()
        busy = "generation" if self.phase("generation", comps) > self.phase("training", comps) else "training"
        return max((c for c in comps if c.phase == busy), key=lambda c: c.bytes)


def logits_bytes(batch: int, positions: int, vocab: int, dtype_bytes: float) -> float:
    """Bytes of one logits tensor: ``batch x positions x vocab`` elements."""
    return batch * positions * vocab * dtype_bytes


def _logits_peak(
    s: Settings, shape: Shape, prec: Precision, batch: int, positions: int, sft: bool = False
) -> tuple[float, str]:
    """Bytes the logits of one micro-batch hold at their peak, and how (see the module docstring).

    ``sft``: the hindsight start's SFTTrainer (TRL's default ``loss_type="chunked_nll"``) runs the lm_head on
    :data:`SFT_CHUNK_TOKENS` answer tokens at a time under checkpointing: one chunk's fp32 logits, log-softmax,
    their exponent and product, or their gradients, are live (:data:`SFT_CHUNK_COPIES`; read from the code, not
    measured).
    """
    one = logits_bytes(batch, positions, shape.vocab, 4)
    size = f"{batch} x {positions} x {shape.vocab} x 4 B"
    if sft:
        rows = min(SFT_CHUNK_TOKENS, batch * positions)
        return SFT_CHUNK_COPIES * rows * shape.vocab * 4, f"chunked: {SFT_CHUNK_COPIES} x {rows} x {shape.vocab} x 4 B"
    if prec.amp:  # fp32 (accelerate converts) saved by TRL's kernel, plus their fp32 gradient
        return 2 * one, f"fp32 + fp32 gradient: 2 x {size}"
    # CPU: forward holds the model's logits, the temperature-scaled copy and an entropy chunk; backward holds the
    # saved copy, the per-row gradients and their stack
    forward = (1 if s.temperature == 1.0 else 2) * one + 3 * ENTROPY_CHUNK_ROWS * shape.vocab * 4
    return max(forward, CPU_LOGIT_COPIES * one), f"{CPU_LOGIT_COPIES:g} x {size} (TRL's fallback log-softmax)"


def memory_components(cfg: TrainConfig, s: Settings, shape: Shape, prec: Precision, device: Gpu) -> list[Component]:
    """The GRPO run's memory components (see the module docstring)."""
    lora = lora_params(shape, cfg.lora.r, cfg.lora.target_modules)
    comps = _static(shape, prec, device, lora, s.optim, cfg.lora.r)
    length = s.prompt + s.completion
    if s.use_vllm and s.vllm_mode == "colocate":
        share = s.vllm_share * device.memory
        comps.append(Component("vLLM reservation (colocate)", "generation", share, f"{s.vllm_share:g} of the card"))
        if not s.vllm_sleep:
            comps.append(Component("vLLM reservation while training (no sleep mode)", "training", share))
    elif not s.use_vllm:
        comps += _generation(shape, prec, s.sequences, s.prompt, s.completion)
    comps += _training(cfg, s, shape, prec, s.per_device, length, s.completion + 1, lora)
    return comps


def _static(shape: Shape, prec: Precision, device: Gpu, lora: int, optim: str, r: int) -> list[Component]:
    linear = shape.layers * shape.linear_params()
    kind = "nf4" if prec.linear < 1 else f"{prec.linear * 8:g}-bit"
    comps = [
        Component(
            "base weights",
            "static",
            linear * prec.linear + shape.other_params() * prec.other,
            f"{_count(linear)} {kind} + {_count(shape.other_params())} at {prec.other * 8:g}-bit",
        ),
        Component("LoRA weights (fp32)", "static", 4 * lora, f"r {r}: {lora / 1e6:.1f} M params"),
        Component("optimizer states", "static", optimizer_bytes_per_param(optim) * lora, optim),
    ]
    if device.cuda:
        comps.append(Component("CUDA context", "static", CUDA_CONTEXT, "outside torch's allocator"))
    return comps


def _generation(shape: Shape, prec: Precision, seqs: int, prompt: int, completion: int) -> list[Component]:
    kv = shape.kv_bytes_per_token(prec.kv) * seqs * (prompt + completion)
    # prefill, no grad: the residual, the normed input and three MLP-wide tensors of every prompt token, the float
    # mask SDPA builds; sampling: the step's logits in fp32, processed, softmaxed (x4)
    prefill = seqs * prompt * (2 * shape.hidden * prec.residual + 3 * shape.intermediate * prec.act)
    prefill += seqs * prompt * prompt * (prec.act + 1)
    sampling = 4 * seqs * shape.vocab * 4
    return [
        Component(
            "KV cache",
            "generation",
            kv,
            f"{seqs} seq x {prompt + completion} tok x {shape.kv_bytes_per_token(prec.kv) / 1024:.1f} KiB",
        ),
        Component("cache growth, prefill, sampling", "generation", kv / (2 * shape.layers) + prefill + sampling),
    ]


def _training(
    cfg: TrainConfig,
    s: Settings,
    shape: Shape,
    prec: Precision,
    batch: int,
    length: int,
    positions: int,
    lora: int,
    sft: bool = False,
) -> list[Component]:
    """One micro-batch's saved activations, then the larger of the logits' peak and one layer's backward."""
    tokens = batch * length
    per = layer_elements(shape, cfg.lora.r, cfg.lora.target_modules, length, input_copies=prec.norm_output_fp32)
    layer = tokens * (per["act"] * prec.act + per["norm"] * prec.norm + per["mask"] * prec.act)
    # a layer's backward: its MLP's gradients (up to three MLP-wide tensors) and the hidden states' gradient
    backward = tokens * (3 * shape.intermediate * prec.act + 2 * shape.hidden * prec.residual)
    shared = tokens * length + tokens * shape.hidden * prec.norm  # the boolean mask; the final norm's input
    if s.checkpointing:
        inputs = 0 if prec.offload_checkpoints else shape.layers * tokens * shape.hidden * prec.residual
        saved = Component(
            "checkpointed layer inputs",
            "training",
            inputs + shared,
            f"{shape.layers} x {batch} x {length} x {shape.hidden}",
        )
        layer_peak = layer + backward
    else:
        saved = Component(
            "activations (all layers)",
            "training",
            shape.layers * layer + shared,
            f"{shape.layers} layers x {batch} x {length} tokens",
        )
        layer_peak = backward
    logits, how = _logits_peak(s, shape, prec, batch, positions, sft)
    name = "one layer recomputed + its backward" if s.checkpointing else "a layer's backward"
    if logits >= layer_peak:
        top = Component("logits and their gradient", "training", logits, f"{how}; above {name}")
    else:
        top = Component(name, "training", layer_peak, f"above the logits' {logits / GIB:.2f} GiB")
    return [saved, top, Component("LoRA gradients (fp32)", "training", 4 * lora)]


def _hindsight_components(cfg: TrainConfig, shape: Shape, prec: Precision, device: Gpu) -> list[Component]:
    """The hindsight start's memory: sampling (KV cache) and the supervised fine-tune (SFTTrainer, AdamW)."""
    h = cfg.hindsight
    lora = lora_params(shape, cfg.lora.r, cfg.lora.target_modules)
    comps = _static(shape, prec, device, lora, "adamw_torch_fused", cfg.lora.r)
    comps += _generation(shape, prec, h.generation_batch_size, cfg.data.max_prompt_tokens, h.max_tokens)
    length = cfg.data.max_prompt_tokens + h.max_tokens
    sft = replace(settings(cfg), temperature=1.0)
    micro = h.micro_batch_size or h.batch_size  # pairs per forward pass; the rest of a batch is accumulated
    comps += _training(cfg, sft, shape, prec, micro, length, length, lora, sft=True)
    return [replace(c, name=f"hindsight: {c.name}") if c.phase != "static" else c for c in comps]


def _decode_seconds(shape: Shape, prec: Precision, device: Gpu, seqs: int, context: float, vllm: bool) -> float:
    """Seconds of one decode step for ``seqs`` sequences at an average ``context`` tokens."""
    linear = shape.layers * shape.linear_params()
    # batched 4-bit decode dequantizes each weight to 16-bit, then multiplies: ~4.5 bytes moved per parameter;
    # vLLM holds its own 16-bit lm_head
    head = shape.vocab * shape.hidden * (2 if vllm else prec.other)
    weights = linear * (prec.linear + 4 if prec.linear < 1 else prec.linear) + head
    moved = weights + seqs * context * shape.kv_bytes_per_token(prec.kv)
    compute = 2 * (linear + shape.vocab * shape.hidden) * seqs / (device.flops * TRAIN_MFU)
    if vllm:
        return max(moved / (device.bandwidth * VLLM_BANDWIDTH_EFF) + compute, VLLM_STEP_FLOOR_S)
    ops = DECODE_OPS_FIXED + shape.layers * (DECODE_OPS_PER_LAYER + (BNB_OPS_PER_LAYER if prec.linear < 1 else 0))
    return max(moved / (device.bandwidth * GEN_BANDWIDTH_EFF) + compute, ops * HOST_SECONDS_PER_OP)


def _train_flops(shape: Shape, seqs: int, length: int, positions: int, checkpointing: bool) -> float:
    """FLOPs of forward and backward (input gradients only: the base is frozen) over ``seqs`` sequences."""
    linear = shape.layers * shape.linear_params()
    passes = 3 if checkpointing else 2  # forward, backward, and the recompute
    body = 2 * linear * seqs * length * passes
    attention = 2 * length * length * shape.heads * shape.head_dim * shape.layers * seqs * (passes + 1)
    head = 4 * shape.vocab * shape.hidden * seqs * positions
    return body + attention + head


def step_seconds(s: Settings, shape: Shape, prec: Precision, device: Gpu) -> dict[str, float] | None:
    """Seconds of one optimizer step: ``generation`` and ``training``; None without throughput figures."""
    if device.bandwidth is None or device.flops is None:
        return None
    rate = device.flops * TRAIN_MFU
    seqs = s.sequences
    prefill = 2 * shape.params() * seqs * s.prompt / rate
    decode = s.completion * _decode_seconds(shape, prec, device, seqs, s.prompt + s.completion / 2, s.use_vllm)
    generation = s.rounds_per_step * (prefill + decode) + (VLLM_SYNC_S if s.use_vllm else 0.0)
    total = s.prompts_per_step * s.generations
    length = s.prompt + s.completion
    flops = _train_flops(shape, total, length, s.completion + 1, s.checkpointing)
    if s.beta > 0 or s.use_vllm:  # reference-model or importance-sampling log-probs: one more forward
        flops += 2 * shape.layers * shape.linear_params() * total * length
    return {"generation": generation, "training": flops / rate}


def hindsight_seconds(cfg: TrainConfig, shape: Shape, prec: Precision, device: Gpu) -> float:
    """Seconds of the hindsight start: sampling every problem once per style, then its SFT epochs (upper bound)."""
    h = cfg.hindsight
    if not h.problems or device.bandwidth is None or device.flops is None:
        return 0.0
    answers = h.problems * len(h.styles)
    batches = math.ceil(answers / h.generation_batch_size)
    context = cfg.data.max_prompt_tokens + h.max_tokens / 2
    sample = batches * h.max_tokens * _decode_seconds(shape, prec, device, h.generation_batch_size, context, False)
    length = cfg.data.max_prompt_tokens + h.max_tokens
    sft = h.epochs * _train_flops(shape, answers, length, length, cfg.model.gradient_checkpointing)
    return sample + sft / (device.flops * TRAIN_MFU)


def plan_backend(requested: str, device: Gpu) -> str:
    """The backend a plan assumes: the requested one; ``auto`` is plain on CPU, bnb on a GPU (Unsloth uses less)."""
    if requested != "auto":
        return requested
    return "bnb" if device.cuda else "plain"


def plan(
    cfg: TrainConfig,
    device: Gpu,
    backend: str | None = None,
    shape: Shape | None = None,
    name: str = "",
    suggest: bool = True,
) -> Plan:
    """The memory and time plan of ``cfg`` on ``device``.

    Args:
        cfg: the run.
        device: the card (:func:`parse_gpu`, :func:`gpu_from_name`) or :func:`cpu_device`.
        backend: the backend the run uses (default: :func:`plan_backend` of ``model.backend``).
        shape: the model's shape (default: :func:`model_shape` of ``model.name``).
        name: the config's name, for the report.
        suggest: look for the nearest settings that fit and finish when these do not.
    """
    backend = backend or plan_backend(cfg.model.backend, device)
    shape = shape or model_shape(cfg.model.name)
    s = settings(cfg)
    if engine_for(cfg.rollouts, backend) == "vllm":  # l1lite's (or Unsloth's) engine beside the model, never asleep
        s = replace(s, use_vllm=True, vllm_mode="colocate", vllm_share=cfg.rollouts.gpu_memory_utilization)
    prec = precision(backend, device, cfg.model.load_in_4bit)
    comps = memory_components(cfg, s, shape, prec, device)
    result = Plan(
        config=name,
        device=device,
        backend=backend,
        precision=prec,
        shape=shape,
        settings=s,
        lora=lora_params(shape, cfg.lora.r, cfg.lora.target_modules),
        components=comps,
        hindsight=_hindsight_components(cfg, shape, prec, device) if cfg.hindsight.problems else [],
        step_seconds=step_seconds(s, shape, prec, device),
        hindsight_seconds=hindsight_seconds(cfg, shape, prec, device),
    )
    if suggest:
        result.suggestions = suggestions(cfg, result)
    return result


def _with(cfg: TrainConfig, **trainer: Any) -> TrainConfig:
    """``cfg`` with ``trainer`` keys replaced."""
    return replace(cfg, trainer={**cfg.trainer, **trainer})


def _trial(cfg: TrainConfig, p: Plan) -> Plan:
    """The plan of ``cfg`` on ``p``'s device, backend and model, without suggestions."""
    return plan(cfg, p.device, p.backend, p.shape, suggest=False)


def _layouts(s: Settings) -> list[dict[str, Any]]:
    """Batch layouts with the same prompts and rollouts per optimizer step: smaller micro-batches, more accumulation,
    and generation rounds of fewer sequences, fastest first."""
    total = s.per_device * s.accumulation
    found = []
    for per_device in sorted({p for p in range(1, s.per_device + 1) if total % p == 0}, reverse=True):
        accumulation = total // per_device
        for spg in sorted((d for d in range(1, accumulation + 1) if accumulation % d == 0), reverse=True):
            if (per_device * spg) % s.generations == 0:
                found.append(
                    {
                        "per_device_train_batch_size": per_device,
                        "gradient_accumulation_steps": accumulation,
                        "steps_per_generation": spg,
                    }
                )
    return found


def _changes(cfg: TrainConfig, keys: dict[str, Any]) -> str:
    """``--set`` flags for the keys that differ from ``cfg``."""
    s = settings(cfg)
    current = {
        "per_device_train_batch_size": s.per_device,
        "gradient_accumulation_steps": s.accumulation,
        "steps_per_generation": s.steps_per_generation,
        "max_completion_length": s.completion,
        "num_generations": s.generations,
        "gradient_checkpointing": s.checkpointing,
        "max_steps": s.max_steps,
    }
    flags = [
        f"trainer.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in keys.items() if current.get(k) != v
    ]
    return " ".join(f"--set {f}" for f in flags)


def nearest_fit(cfg: TrainConfig, p: Plan) -> tuple[dict[str, Any], Plan] | None:
    """The nearest trainer settings whose plan fits: the same recipe in smaller pieces (checkpointing on, smaller
    micro-batches, smaller generation rounds) first, the fastest of those; else shorter completions, then fewer
    rollouts per prompt."""
    s = p.settings
    recipes: list[dict[str, Any]] = [{}]
    completion = s.completion
    while completion > 64:
        completion //= 2
        recipes.append({"max_completion_length": completion})
    for generations in (g for g in (s.generations // 2, s.generations // 4) if g >= 2):
        recipes += [
            {"max_completion_length": c, "num_generations": generations}
            for c in [s.completion] + [r["max_completion_length"] for r in recipes[1:]]
        ]
    for recipe in recipes:
        best = None
        base = _with(cfg, **recipe)
        if "num_generations" in recipe:  # the same prompts per step: fewer sequences
            base = _with(
                base, per_device_train_batch_size=max(1, s.per_device * recipe["num_generations"] // s.generations)
            )
        for layout in _layouts(settings(base)):
            keys = {**recipe, **layout, "gradient_checkpointing": True}
            trial = _trial(_with(cfg, **keys), p)
            if trial.fits and (best is None or (trial.total_seconds or 0) < (best[1].total_seconds or 0)):
                best = (keys, trial)
            if trial.fits and trial.total_seconds is None:
                break
        if best is not None:
            return best
    return None


def _hindsight_fit(cfg: TrainConfig, p: Plan) -> TrainConfig | None:
    """``cfg`` with the hindsight start in smaller pieces until that stage fits, shrinking its larger phase: SFT with
    gradient checkpointing, then fewer pairs per forward pass (the same pairs per optimizer step); sampling with
    fewer answers at once."""
    while True:
        trial = _trial(cfg, p)
        if trial.stage_peak(trial.hindsight) <= trial.budget:
            return cfg
        h = cfg.hindsight
        micro = h.micro_batch_size or h.batch_size
        smaller = next((d for d in range(micro // 2, 0, -1) if h.batch_size % d == 0), None)
        sft = trial.phase("training", trial.hindsight) >= trial.phase("generation", trial.hindsight)
        if sft and not trial.settings.checkpointing:
            cfg = _with(cfg, gradient_checkpointing=True)
        elif sft and smaller is not None:
            cfg = replace(cfg, hindsight=replace(h, micro_batch_size=smaller))
        elif h.generation_batch_size > 1:
            cfg = replace(cfg, hindsight=replace(h, generation_batch_size=h.generation_batch_size // 2))
        elif smaller is not None:
            cfg = replace(cfg, hindsight=replace(h, micro_batch_size=smaller))
        else:
            return None


def _nothing_fits(p: Plan, stage: list[Component]) -> str:
    """Why no nearby settings fit ``p``'s device."""
    static = p.phase("static", stage)
    if static > p.budget:
        return f"nothing fits: the weights, LoRA and CUDA context alone take {static / GIB:.1f} GiB"
    return f"nothing near fits: batches of one still exceed {p.budget / GIB:.1f} GiB"


def suggestions(cfg: TrainConfig, p: Plan) -> list[str]:
    """What to change when ``p`` does not fit or will not finish in a session (empty when it does both)."""
    out = []
    if p.hindsight and p.stage_peak(p.hindsight) > p.budget:
        fixed = _hindsight_fit(cfg, p)
        if fixed is None:
            return [_nothing_fits(p, p.hindsight)]
        flags = [
            f"--set hindsight.{key}={getattr(fixed.hindsight, key)}"
            for key in ("micro_batch_size", "generation_batch_size")
            if getattr(fixed.hindsight, key) != getattr(cfg.hindsight, key)
        ]
        if settings(fixed).checkpointing != p.settings.checkpointing:
            flags.insert(0, "--set trainer.gradient_checkpointing=true")
        cfg, p = fixed, _trial(fixed, p)
        out.append(f"hindsight start fits: {' '.join(flags)} (peak {p.stage_peak(p.hindsight) / GIB:.1f} GiB)")
    if not p.fits and p.settings.max_steps:
        found = nearest_fit(cfg, p)
        if found is None:
            return [*out, _nothing_fits(p, p.components)]
        keys, trial = found
        time = f", {trial.total_seconds / 3600:.1f} h" if trial.total_seconds is not None else ""
        out.append(f"fits: {_changes(cfg, keys)} (peak {trial.peak / GIB:.1f} GiB{time})")
        p = trial
        cfg = _with(cfg, **keys)
    if p.finishes is False and p.step_seconds:
        step = sum(p.step_seconds.values())
        steps = int((SESSION_HOURS * 3600 - p.hindsight_seconds) // step)
        if steps >= 1:
            out.append(
                f"finishes in {SESSION_HOURS:g} h: {_changes(cfg, {'max_steps': steps})} ({step:.0f} s per step)"
            )
        if not p.settings.use_vllm and p.device.cuda:
            vllm = _trial(_with(cfg, use_vllm=True, vllm_mode="colocate", vllm_enable_sleep_mode=True), p)
            if vllm.fits and vllm.total_seconds is not None:
                out.append(
                    f"with vLLM colocate (pip install 'trl[vllm]'): --set trainer.use_vllm=true "
                    f"--set trainer.vllm_enable_sleep_mode=true: {vllm.total_seconds / 3600:.1f} h, "
                    f"peak {vllm.peak / GIB:.1f} GiB"
                )
    return out


def _size(n: float) -> str:
    """Bytes as GiB, or MiB under a tenth of a GiB."""
    return f"{n / GIB:6.2f} GiB" if n >= 0.1 * GIB else f"{n / MIB:6.1f} MiB"


def _count(n: float) -> str:
    """A parameter count in B or M."""
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def _seconds(n: float) -> str:
    return f"{n:.0f} s" if n >= 10 else f"{n:.1f} s"


def _hours(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def format_plan(p: Plan) -> str:
    """The plan as text: the component table, the peak against the device, time, verdict and suggestions."""
    s, d = p.settings, p.device
    cc = f", cc {d.cc:.1f}" if d.cc else ""
    lines = [
        f"plan{' ' + p.config if p.config else ''}: {d.name} ({d.memory / GIB:.1f} GiB{cc}), backend {p.backend} "
        f"({p.precision.label}); estimates until measured on the card",
        f"model: {_count(p.shape.params())} params ({p.shape.layers} layers, hidden {p.shape.hidden}, vocab "
        f"{p.shape.vocab}), LoRA {_count(p.lora)}",
    ]
    if s.max_steps:
        lines.append(
            f"step: {s.prompts_per_step} prompts x {s.generations} rollouts; generation {s.sequences} sequences x "
            f"({s.prompt} prompt + {s.completion} completion) tokens; micro-batch {s.per_device} x "
            f"{s.accumulation} accumulation; checkpointing {'on' if s.checkpointing else 'off'}"
        )
    lines.append(f"{'component':<48} {'phase':<11} {'size':>10}  note")
    for c in [
        *(p.components if s.max_steps else [c for c in p.components if c.phase == "static"]),
        *[c for c in p.hindsight if c.phase != "static"],
    ]:
        lines.append(f"{c.name:<48} {c.phase:<11} {_size(c.bytes)}  {c.note}".rstrip())
    for stage, comps in (("GRPO", p.components if s.max_steps else []), ("hindsight start", p.hindsight)):
        if comps:
            static, gen, train = (
                _size(p.phase(phase, comps)).strip() for phase in ("static", "generation", "training")
            )
            lines.append(f"{stage} peak = static {static} + max(generation {gen}, training {train})")
    limit = f"{HEADROOM:.0%} of {d.memory / GIB:.1f}" if d.cuda else f"{d.memory / GIB:.1f}"
    verdict = "fits" if p.fits else f"does NOT fit (largest: {p.largest().name}, {p.largest().bytes / GIB:.1f} GiB)"
    lines.append(f"peak {_size(p.peak).strip()} of {limit} GiB: {verdict}")
    if p.step_seconds is not None:
        if s.max_steps:
            gen, train = p.step_seconds["generation"], p.step_seconds["training"]
            generated = s.prompts_per_step * s.generations * s.completion
            trained = s.prompts_per_step * s.generations * (s.prompt + s.completion)
            lines.append(
                f"time: {generated} generated + {trained} trained tokens per step (at most); generation "
                f"{_seconds(gen)} + training {_seconds(train)} = {_seconds(gen + train)} per step x {s.max_steps} steps"
            )
        if p.hindsight_seconds:
            lines.append(f"hindsight start: {_hours(p.hindsight_seconds)}")
        finish = "finishes" if p.finishes else "does NOT finish"
        lines.append(f"total {_hours(p.total_seconds)}: {finish} within a {SESSION_HOURS:g} h session")
    elif d.cuda:
        lines.append("time: no throughput figures for this card (name one of " + ", ".join(GPUS) + ")")
    lines += [f"suggest: {x}" for x in p.suggestions]
    return "\n".join(lines)


def detected_gpu() -> Gpu | None:
    """The first CUDA device as a :class:`Gpu` (table figures by name, its real size), or None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    gpu = gpu_from_name(torch.cuda.get_device_name(0), props.total_memory)
    return replace(gpu, cc=props.major + props.minor / 10)


def check_plan(
    cfg: TrainConfig, backend: str, gpu: str | None = None, force: bool = False, show: bool = True
) -> Plan | None:
    """Print the run's plan and refuse one whose peak exceeds the GPU, before any model loads.

    The device is ``gpu`` (a :func:`parse_gpu` spec), else the detected CUDA GPU, else the CPU, which is planned
    but never refused. A model whose shape is unknown is not planned.

    Args:
        cfg: the validated run.
        backend: the backend the run chose (a simulated GPU on a machine without one plans ``auto`` as bnb).
        gpu: the card to plan for instead of the detected one (``--gpu``).
        force: train even when the plan does not fit (``--force``).
        show: print the plan.
    """
    real = detected_gpu()
    device = parse_gpu(gpu) if gpu else real or cpu_device()
    if gpu and real is None:  # a card simulated on a machine without one: the backend it would choose
        backend = plan_backend(cfg.model.backend, device)
    try:
        shape = model_shape(cfg.model.name)
    except ConfigError as e:
        if show:
            print(f"l1lite: no plan ({e})", flush=True)
        return None
    result = plan(cfg, device, backend, shape)
    if show:
        print(format_plan(result), flush=True)
    if result.fits or force or not device.cuda:
        return result
    fixes = [x.split("fits: ", 1)[1] for x in result.suggestions if "fits: " in x and not x.startswith("nothing")]
    fix = " and ".join(fixes)
    biggest = result.largest()
    raise ConfigError(
        f"planned peak {result.peak / GIB:.1f} GiB exceeds {HEADROOM:.0%} of the {device.name} GPU's "
        f"{device.memory / GIB:.1f} GiB (largest: {biggest.name}, {biggest.bytes / GIB:.1f} GiB); "
        + (f"fix: {fix}" if fix else "no nearby settings fit: a larger GPU")
        + "; --force to train anyway"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite plan --config NAME [--gpu CARD] [--set k=v ...] [--json]``."""
    parser.add_argument("--config", required=True, help="training config: a YAML path or a shipped preset name")
    parser.add_argument(
        "--gpu",
        help=f"card to plan for: {', '.join(GPUS)}, or a size such as 24GB (default: the detected GPU, else this CPU)",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def as_dict(p: Plan) -> dict[str, Any]:
    """The plan as plain data (bytes and seconds)."""
    return {
        "config": p.config,
        "device": p.device.name,
        "memory": p.device.memory,
        "backend": p.backend,
        "components": [vars(c) for c in [*p.components, *p.hindsight]],
        "peak": p.peak,
        "fits": p.fits,
        "step_seconds": p.step_seconds,
        "total_seconds": p.total_seconds,
        "finishes": p.finishes,
        "suggestions": p.suggestions,
    }


def run(args: argparse.Namespace) -> int:
    """CLI entry point."""
    cfg = load_config(TrainConfig, args.config, args.overrides)
    device = parse_gpu(args.gpu) if args.gpu else detected_gpu() or cpu_device()
    name = Path(str(args.config)).name.removesuffix(".yaml")
    result = plan(cfg, device, name=name)
    print(json.dumps(as_dict(result), indent=2) if args.json else format_plan(result))
    return 0
