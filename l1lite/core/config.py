"""Typed, validated configuration: YAML files or shipped presets plus ``--set key.sub=value`` overrides.

Owns the config dataclasses, their key and type checks (an unknown or misspelt key is a
:class:`ConfigError` naming it, never silently ignored), :class:`ConfigError` itself, and where a
``--config`` value is read from: a YAML path, or the name of a preset shipped in the package
``l1lite.configs`` (the repository's ``configs/`` folder). Checks of what a value means (reward modes,
graders, schedulers, model loaders) belong to the stage that uses it. Imports no other l1lite module.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

PAPER_MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
BUILTIN_DATASET = "l1lite:math-small"
PRESETS_PACKAGE = "l1lite.configs"  # the repository's configs/ folder, shipped as package data
PRESET_SUFFIX = ".yaml"


class ConfigError(ValueError):
    """A configuration problem, reported to users as one line."""


def utf8_line(raw: bytes, where: str) -> str:
    """``raw`` decoded as UTF-8; else a :class:`ConfigError` ``WHERE: not valid UTF-8 (byte 0x.. at column N)``."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{where}: not valid UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1})") from None


class _Loader(yaml.SafeLoader):
    """YAML with 1.2 booleans and floats: ``save_strategy: no`` stays the string ``"no"``, ``1e-4`` is a float.

    A key given twice in one mapping is an error (PyYAML would keep the last silently).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' given twice (lines {seen[key]} and {line})", key_node.start_mark
                )
            if isinstance(key, typing.Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF")
_Loader.add_implicit_resolver(  # YAML 1.1 (PyYAML) wants a dot: 1e-4 would be the string "1e-4"
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    "-+0123456789.",
)


def int_list(text: str) -> list[int]:
    """An argparse ``type`` for a comma-separated list of integers (``--budgets 16,64``, ``--seeds 0,1``)."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}")
    return values


def parse_yaml(text: str) -> Any:
    """Parse YAML text with 1.2 booleans and floats."""
    return yaml.load(text, Loader=_Loader)


@dataclass
class ModelConfig:
    """Base model and how it is loaded."""

    name: str = PAPER_MODEL
    backend: str = "auto"  # auto | unsloth | bnb | plain
    load_in_4bit: bool = True
    max_seq_length: int = 4608
    adapter: str | None = None  # start from a trained adapter (L1-Max continues L1-Exact)
    gradient_checkpointing: bool = True


@dataclass
class LoraConfig:
    """LoRA adapter shape."""

    r: int = 32
    alpha: int = 64
    dropout: float = 0.0
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass
class DataConfig:
    """Where the problems come from and how their columns map."""

    dataset: str = BUILTIN_DATASET  # hub id, local .jsonl/.json/.parquet/.csv, or l1lite:NAME
    preset: str | None = None  # deepscaler | gsm8k | math | aime | choice (None: guess from columns)
    config_name: str | None = None
    split: str = "train"
    question_field: str | None = None
    answer_field: str | None = None
    limit: int | None = None
    max_prompt_tokens: int = 512


@dataclass
class PromptConfig:
    """Budget prompt wording; defaults are the paper's strings."""

    instruction: str = "Let's think step by step and output the final answer within \\boxed{}."
    exact_template: str = "Think for {n} tokens."
    max_template: str = "Think for maximum {n} tokens."


@dataclass
class RewardConfig:
    """LCPO reward: formula, constants and grading."""

    mode: str = "exact"  # exact | max | dual
    alpha_exact: float = 0.0003
    alpha_max: float = 0.001
    delta: float = 0.5
    grader: str = "math"  # math | choice | exact | number | package.module:function
    require_think_close: bool = True
    format_weight: float = 0.0
    timeout_s: float = 2.0
    max_answer_chars: int = 2000
    custom: list[str] = field(default_factory=list)  # extra reward functions "package.module:function"


@dataclass
class CurriculumConfig:
    """Target-length schedule over training steps and the Exact/Max mix."""

    scheduler: str = "uniform"  # uniform | choice | linear | staged | adaptive
    lo: int = 100
    hi: int = 4000
    choices: list[int] = field(default_factory=list)  # choice: the targets to draw from, e.g. [16, 64]
    start: list[int] = field(default_factory=lambda: [100, 4000])  # linear: range at step 0
    end: list[int] = field(default_factory=lambda: [100, 4000])  # linear: range at `steps`
    steps: int = 100  # linear: steps to move from start to end
    stages: list[list[int]] = field(default_factory=list)  # staged: [[from_step, lo, hi], ...]
    natural: int = 1000  # adaptive: the model's natural length to start around
    threshold: float = 0.2  # adaptive: widen when mean relative length error falls below this
    widen: float = 0.7  # adaptive: start at [natural*widen, natural/widen]; each widening lo*=widen, hi/=widen
    window: int = 4  # adaptive: logged error values (in the current range) averaged for each decision
    max_ratio: float = 0.0  # share of prompts in "max" mode (L1-Max dual objective: 0.5)
    max_ratio_stages: list[list[float]] = field(default_factory=list)  # [[from_step, ratio], ...]
    paired: bool = False  # each problem twice in a row: target t, then its mirror lo*hi/t (a contrast pair)
    seed: int = 0


@dataclass
class HindsightConfig:
    """Supervised start before GRPO: the model's own answers, each labelled with its length as the budget."""

    problems: int = 0  # training problems answered (once per style); 0: no hindsight start
    styles: list[str] = field(
        default_factory=lambda: ["", " Answer in a few words.", " Explain each step in detail."]
    )  # suffixes of the question while sampling (not in the pairs): they spread the answers' lengths
    temperature: float = 1.0
    max_tokens: int = 128  # answers that do not end within this are dropped
    min_tokens: int = 8  # shorter answers are dropped
    correct_only: bool = False  # keep only answers the reward's grader accepts
    epochs: int = 5
    learning_rate: float = 1.0e-3
    lr_scheduler_type: str = "constant"  # constant | linear | cosine (decay to 0 over the epochs)
    batch_size: int = 8  # pairs per SFT optimizer step
    micro_batch_size: int = 0  # pairs per forward pass (0: batch_size), the rest accumulated: long pairs on a GPU
    generation_batch_size: int = 16  # prompts per batched generate call while sampling


@dataclass
class RolloutsConfig:
    """What generates GRPO's completions: TRL's own (transformers, or ``trainer.use_vllm``) or l1lite's vLLM engine."""

    engine: str = "auto"  # auto (vllm under Unsloth when vLLM is installed, else transformers) | transformers | vllm
    sync_every: int = 1  # vllm: optimizer steps between adapter saves (the rollouts in between use the last one)
    kv_cache_gib: float = 1.0  # vllm on the CPU: KV cache reserved, GiB
    gpu_memory_utilization: float = 0.3  # vllm on a GPU: its share of the card


@dataclass
class LoggingConfig:
    """Where training metrics go."""

    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])  # tensorboard | wandb | trackio | none
    logging_steps: int = 1


@dataclass
class TrainConfig:
    """A whole training run: `l1lite train --config FILE`."""

    output_dir: str = "runs/l1"
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    data: DataConfig = field(default_factory=DataConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    hindsight: HindsightConfig = field(default_factory=HindsightConfig)
    rollouts: RolloutsConfig = field(default_factory=RolloutsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    trainer: dict[str, Any] = field(default_factory=dict)  # any GRPOConfig field, validated by TRL


@dataclass
class EvalConfig:
    """An evaluation run: `l1lite eval --config FILE` (command-line flags override the file)."""

    out: str = "runs/eval"  # results.jsonl, summary.json, report.md and plots go here
    model: str | None = None  # .gguf file (llama.cpp) or HF folder / hub id (transformers)
    adapter: str | None = None  # PEFT adapter on an HF model
    endpoint: str | None = None  # OpenAI-compatible server URL(s), comma-separated (llama.cpp server, Ollama /v1, vLLM)
    tokenizer: str | None = None  # tokenizer used to count tokens when the backend has none of its own
    backend: str = "auto"  # what runs an HF model folder: auto (transformers) | transformers | vllm
    n_ctx: int = 8192
    data: DataConfig = field(default_factory=DataConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    grader: str | None = (
        None  # math | choice | exact | number | package.module:function (None: choice preset -> choice)
    )
    require_think_close: bool = True  # False: a model without </think> is graded on its whole text
    budgets: list[int] = field(default_factory=lambda: [512, 1024, 2048, 3600])
    strategies: list[str] = field(default_factory=lambda: ["prompt", "forcing", "none"])  # see l1lite.eval.engine
    mode: str = "exact"  # exact | max: budget sentence wording (prompt) / forcing with or without a minimum
    samples: int = 1  # samples per problem (paper: 16)
    temperature: float = 0.6
    top_p: float = 0.95
    seed: int = 0
    max_tokens: int = 7168  # cap on generated tokens (thinking + answer); leave room to measure overshoot
    wait: int = 2  # forcing: most "Wait" insertions
    batch_size: int = 1  # transformers: prompt/none samples per batched call (rows then depend on it); 1: one by one
    concurrency: int = 1  # endpoints, vllm: samples in flight at once (vllm: 1 means all); rows do not depend on it
    progress: bool = True  # a progress bar on a terminal (else, or when false, one line when done)


@dataclass(frozen=True)
class BudgetConfig:
    """The thinking budget, how it is enforced, and the bound on all generated tokens.

    ``l1lite.inference.types.Budget`` checks these on construction; ``ServeConfig`` has them as its keys.

    Args:
        budget: thinking budget N in tokens; None: no budget sentence in the prompt.
        mode: ``"exact"`` ("Think for N") or ``"max"`` ("for maximum N"), one of ``l1lite.core.prompts.MODES``.
        enforce: ``"none"`` (the prompt only), ``"cap"`` (close the thinking at N) or ``"forcing"`` (s1: also
            replace an early end of thinking by "Wait", then cap at N).
        min_tokens: forcing: minimum thinking tokens (None: the budget).
        wait: forcing: at most this many "Wait" insertions.
        cap_message: text written before ``</think>`` when the cap closes the thinking (it counts towards N).
        max_tokens: bound on all generated tokens, thinking and answer.
    """

    budget: int | None = None
    mode: str = "exact"
    enforce: str = "none"
    min_tokens: int | None = None
    wait: int = 2
    cap_message: str = ""
    max_tokens: int = 4096


@dataclass(frozen=True)
class ServeConfig(BudgetConfig):
    """The server: `l1lite serve --config FILE` (command-line flags override the file).

    Its :class:`BudgetConfig` keys are what a request that gives none gets; ``enforce`` applies only to requests
    with a budget.
    """

    model: str | None = None  # .gguf file run in-process with llama.cpp (one request at a time)
    upstream: str | None = None  # or an OpenAI-compatible server's URL (llama-server, Ollama /v1, vLLM)
    tokenizer: str | None = None  # with upstream: the served model's HF tokenizer folder or .gguf
    served_model: str | None = None  # with upstream: the model name to ask for (None: the first listed)
    name: str | None = None  # the model id clients see (None: the GGUF's file name or the upstream's model)
    n_ctx: int = 8192
    threads: int | None = None  # llama.cpp threads (None: llama-cpp-python's choice)
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None  # the Bearer key /v1 requests must give (None: no key)
    max_budget: int = 32768  # largest thinking budget a request may ask for
    effort_budgets: list[int] = field(default_factory=lambda: [256, 1024, 4096])  # reasoning_effort low, medium, high
    max_body: int = 1 << 20  # bytes
    queue: int = 16  # requests that may wait for a worker; more get HTTP 503
    parallel: int = 4  # with upstream: requests passed on at once
    upstream_timeout: float = 600  # seconds of upstream silence before HTTP 502
    request_timeout: float = 30  # seconds a client has to send a request's headers, and then its body (HTTP 408)
    temperature: float = 0.6
    top_p: float = 0.95
    seed: int = 0


def check_type(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against the type ``hint`` (ints widen to floats); a :class:`ConfigError` names ``where``."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return check_type(value, arg, where)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config key '{where}' must be a list, got {value!r}")
        (item,) = typing.get_args(hint) or (Any,)
        return [check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{where}' must be a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) != (hint is bool) or not isinstance(value, hint):
        raise ConfigError(f"config key '{where}' must be {hint.__name__}, got {value!r}")
    return value


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types are errors."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{where or cls.__name__}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise ConfigError(f"unknown config key '{path}' (valid: {', '.join(sorted(names))})")
        kwargs[key] = check_type(value, hints[key], path)
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-dict form of a config dataclass (for YAML/JSON dumps)."""
    return dataclasses.asdict(cfg)


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``key.sub=value`` override in place; the value is parsed as YAML."""
    if "=" not in assignment:
        raise ConfigError(f"override '{assignment}' must look like key.sub=value")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{assignment}': '{part}' is not a section")
    try:
        node[parts[-1]] = parse_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {assignment}: invalid YAML value ({str(e).splitlines()[0]})") from None


def presets() -> dict[str, str]:
    """Shipped preset names (sorted) and each one's description: the first comment line of its YAML."""
    found = {}
    for entry in sorted(resources.files(PRESETS_PACKAGE).iterdir(), key=lambda e: e.name.removesuffix(PRESET_SUFFIX)):
        if entry.name.endswith(PRESET_SUFFIX):
            comments = [line for line in entry.read_text().splitlines() if line.startswith("#")]
            found[entry.name.removesuffix(PRESET_SUFFIX)] = comments[0].lstrip("#").strip() if comments else ""
    return found


def config_file(spec: str | Path) -> Path:
    """The YAML file ``spec`` names: an existing file, else a shipped preset (``l1-exact`` or ``l1-exact.yaml``)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    name = str(spec).removesuffix(PRESET_SUFFIX)
    if Path(name).name != name:  # a path with folders, not a preset name
        raise ConfigError(f"config file not found: {path}")
    shipped = presets()
    if name not in shipped:
        raise ConfigError(f"unknown preset '{name}' and no such file (shipped presets: {', '.join(shipped)})")
    return Path(str(resources.files(PRESETS_PACKAGE).joinpath(name + PRESET_SUFFIX)))


def load_yaml(path: str | Path | None) -> dict[str, Any]:
    """Read a YAML mapping from a file or a shipped preset name (see :func:`config_file`); {} for None."""
    if path is None:
        return {}
    p = config_file(path)
    try:
        data = parse_yaml(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML ({str(e).splitlines()[0]})") from None
    if data is None:  # all defaults would mean the 1.5B paper model and the hub: surely not what was meant
        raise ConfigError(f"{p}: empty config file (no keys); start from a preset (l1lite presets)")
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    return data


def build_config(cls: type, data: dict[str, Any], source: str | Path | None, overrides: list[str]) -> Any:
    """``cls`` from ``data`` (read from ``source``) and then each ``key=value`` override, checked in that order.

    An error in ``data`` names ``source``; an error an override brings in names that override.

    Args:
        cls: the config dataclass.
        data: the mapping read from ``source`` (changed in place by the overrides).
        source: where ``data`` came from, for messages (`None`: nothing to name).
        overrides: ``key.sub=value`` assignments (``--set``), applied in order.
    """
    try:
        cfg = from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}" if source else str(e)) from None
    for assignment in overrides:
        apply_override(data, assignment)
        try:
            cfg = from_dict(cls, data)
        except ConfigError as e:
            raise ConfigError(f"--set {assignment}: {e}") from None
    return cfg


def load_config(cls: type, path: str | Path | None = None, overrides: list[str] | None = None) -> Any:
    """Load ``cls`` from an optional YAML file plus ``key=value`` overrides (see :func:`build_config`)."""
    return build_config(cls, load_yaml(path), path, overrides or [])


# a command's flag -> (config key, help) or (config key, help, more argparse keywords)
Flags = dict[str, tuple]


def _field(cls: type, key: str) -> tuple[Any, Any]:
    """The type hint and default of the dotted config ``key`` of dataclass ``cls``."""
    *sections, last = key.split(".")
    for name in sections:
        cls = typing.get_type_hints(cls)[name]
    default = next(f for f in dataclasses.fields(cls) if f.name == last)
    value = default.default if default.default is not dataclasses.MISSING else default.default_factory()
    return typing.get_type_hints(cls)[last], value


def _text_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, flags: Flags) -> None:
    """``--config``, ``--set`` and one flag per entry of ``flags``, typed and with defaults from ``cls``'s fields.

    Args:
        parser: the command's parser.
        cls: the command's config dataclass: each flag's type and the default its help shows come from its field.
        flags: flag name (``n_ctx`` is ``--n-ctx``) -> (dotted config key, help[, more ``add_argument`` keywords]).
    """
    parser.add_argument("--config", help=f"YAML file or preset with {cls.__name__} keys (flags override it)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    for flag, (key, help_text, *more) in flags.items():
        hint, default = _field(cls, key)
        if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None: the flag is an X
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        kwargs: dict[str, Any] = {"type": {int: int, float: float, bool: None}.get(hint, str)}
        if hint is bool:
            kwargs = {"action": argparse.BooleanOptionalAction}
        elif typing.get_origin(hint) is list:
            kwargs["type"] = int_list if typing.get_args(hint) == (int,) else _text_list
            default = ",".join(map(str, default))
        shown = "" if default in (None, "") else f" (default {default})"
        parser.add_argument(
            f"--{flag.replace('_', '-')}", default=None, help=help_text + shown, **kwargs, **(more[0] if more else {})
        )


def config_from_args(cls: type, args: argparse.Namespace, flags: Flags) -> Any:
    """``cls`` from ``--config``, then the flags given, then ``--set`` overrides (see :func:`add_config_arguments`)."""
    data = load_yaml(args.config)
    for flag, (key, *_) in flags.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if isinstance(value, list) and _field(cls, key)[0] in (str, str | None):  # a repeated flag: comma-joined
            value = ",".join(value)
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return build_config(cls, data, args.config, args.set or [])
