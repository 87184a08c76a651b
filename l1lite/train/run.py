"""``l1lite train``: GRPO training with LCPO rewards and a target-length curriculum, after an optional hindsight start.

Owns the training run: :func:`check_train_config` (the whole config, validated before any model or data
is loaded, then whether the model and dataset can be had), the GRPOConfig it resolves, checkpoints and resume
(a broken checkpoint is skipped or named), and the run's outputs (``adapter/`` with the base's fingerprint,
``summary.json``, ``log_history.json``, ``config.yaml``, written by the main process only when several run under
accelerate or torchrun). The hindsight start (:mod:`l1lite.train.hindsight`) runs first when ``hindsight.problems`` is
set; ``trainer.max_steps: 0`` then stops after it. Each stage checks its own section (rewards,
curriculum, data, loaders, models). Imports Unsloth (through :mod:`l1lite.train.loaders`) before TRL, and TRL,
transformers and the data only inside functions. Must not import export, inference, evaluation or the CLI.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from pathlib import Path
from typing import Any

import yaml

from l1lite.core.config import ConfigError, TrainConfig, check_type, to_dict
from l1lite.core.files import check_output
from l1lite.core.models import (
    ADAPTER_DIR,
    BUILTIN_PREFIX,
    PROVENANCE,
    check_available,
    check_gguf,
    check_model_name,
    fingerprint,
    local_dir,
    resolve_model,
)
from l1lite.core.precision import device_dtype
from l1lite.core.progress import Bar, follow_steps
from l1lite.train import loaders as backends
from l1lite.train.curriculum import STATE_FILE, Curriculum, highest_target, load_curriculum_state, validate
from l1lite.train.hindsight import check_hindsight
from l1lite.train.plan import check_plan
from l1lite.train.rewards import check_reward
from l1lite.train.rollouts import check_rollouts, engine_for

log = logging.getLogger(__name__)
TRAINER_STATE = "trainer_state.json"  # written by the HF Trainer in each checkpoint
SUMMARY_FILE = "summary.json"


def grpo_args(cfg: TrainConfig, cuda: bool, bf16: bool = False, use_vllm: bool = False) -> Any:
    """GRPOConfig from our defaults plus every key of the config's ``trainer`` section (validated by TRL).

    ``use_vllm`` is the default of ``trainer.use_vllm`` (Unsloth's ``fast_inference`` generates through it).

    TRL does not check types, so the keys it declares as numbers or flags are checked here first: a quoted
    ``"1e-4"`` is refused by name instead of failing in the optimizer after the model has loaded.
    """
    import typing

    from trl import GRPOConfig

    hints = typing.get_type_hints(GRPOConfig)
    scalar = {bool, int, float, type(None)}
    trainer = {
        key: check_type(value, hints[key], f"trainer.{key}")
        if key in hints and set(typing.get_args(hints[key]) or [hints[key]]) <= scalar
        else value
        for key, value in cfg.trainer.items()
    }

    if trainer.get("shuffle_dataset", False):
        raise ConfigError("trainer.shuffle_dataset must stay false: the curriculum orders the prompts itself")
    kwargs: dict[str, Any] = {
        "output_dir": cfg.output_dir,
        "report_to": [r for r in cfg.logging.report_to if r != "none"] or "none",
        "logging_steps": cfg.logging.logging_steps,
        "use_cpu": not cuda,
        "bf16": cuda and bf16,
        "fp16": cuda and not bf16,  # T4-class GPUs have no bf16
        "save_strategy": "steps",
        "save_steps": 50,
        "max_steps": 100,
        "gradient_checkpointing": cfg.model.gradient_checkpointing,
        **({"use_vllm": True} if use_vllm else {}),
        **trainer,
        "shuffle_dataset": False,
    }
    try:
        return GRPOConfig(**kwargs)
    except TypeError as e:
        bad = str(e).split("'")[1] if "'" in str(e) else str(e)
        raise ConfigError(f"unknown config key 'trainer.{bad}' (not a GRPOConfig field)") from None
    except ValueError as e:
        raise ConfigError(f"invalid trainer settings: {str(e).splitlines()[0]}") from None


def check_vllm(args: Any, cuda: bool) -> None:
    """Refuse vLLM generation settings that TRL 1.14 would only reject after loading the model, or that fail.

    Args:
        args (`trl.GRPOConfig`):
            The resolved trainer arguments.
        cuda (`bool`):
            Whether a CUDA GPU is usable.
    """
    import importlib.util

    if not args.use_vllm:
        return
    if not cuda:
        raise ConfigError(
            "trainer.use_vllm needs a CUDA GPU: vLLM does not generate on CPU through TRL's weight sync "
            "(rollouts.engine=vllm does, with the adapter as a LoRA folder)"
        )
    if args.vllm_mode not in ("colocate", "server"):
        raise ConfigError(f"trainer.vllm_mode must be 'colocate' or 'server', got '{args.vllm_mode}'")
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError("trainer.use_vllm needs vLLM installed (pip install 'trl[vllm]')")
    if args.vllm_mode == "colocate" and args.world_size % args.vllm_tensor_parallel_size:
        raise ConfigError(
            f"trainer.vllm_tensor_parallel_size {args.vllm_tensor_parallel_size} must divide the "
            f"{args.world_size} training processes (vllm_mode colocate)"
        )


def check_train_config(
    cfg: TrainConfig, gpu: str | None = None, force: bool = False, show_plan: bool = False
) -> tuple[str, str, Any]:
    """Validate the whole config before any model or data is loaded; returns ``(loader, reason, GRPOConfig)``.

    Cheap checks first: model name, loader name, reward (mode, grader, custom rewards), curriculum and the
    data section. Then the loader is chosen (importing Unsloth when it is a candidate, before anything
    imports TRL) and the trainer keys are resolved by GRPOConfig (in the launched process: its world size
    counts), with whole prompts per optimizer step and usable vLLM settings. Then the memory plan
    (:func:`l1lite.train.plan.check_plan`): a run whose planned peak exceeds the GPU (``gpu``, else the detected
    one) is refused unless ``force``; ``show_plan`` prints it. Last, the sources.
    """
    from l1lite.core.data import check_data

    check_model_name(cfg.model.name)
    check_output(cfg.output_dir, "output_dir", folder=True)
    backends.check_backend(cfg.model.backend)
    backends.check_lora(cfg.lora)
    check_reward(cfg.reward)
    validate(cfg.curriculum)
    check_hindsight(cfg.hindsight)
    check_data(cfg.data)
    backend, why = backends.choose(cfg.model.backend)

    import torch

    from l1lite.train.schedule import prompts_per_step

    cuda = torch.cuda.is_available()
    unsloth_vllm = backend == "unsloth" and engine_for(cfg.rollouts, backend) == "vllm"
    args = grpo_args(cfg, cuda, bf16=device_dtype() == "bfloat16", use_vllm=unsloth_vllm)
    check_trainer(cfg, args)
    if args.max_steps == 0 and not cfg.hindsight.problems:
        raise ConfigError("trainer.max_steps is 0 and hindsight.problems is 0: nothing to train")
    if cfg.hindsight.problems and args.world_size > 1:
        raise ConfigError(f"the hindsight start runs in one process, not {args.world_size}: train it alone first")
    prompts_per_step(args)
    check_rollouts(cfg.rollouts, args, backend)
    check_vllm(args, cuda)
    check_plan(cfg, backend, gpu=gpu, force=force, show=show_plan and args.process_index == 0)
    check_sources(cfg)
    return backend, why, args


def check_trainer(cfg: TrainConfig, args: Any) -> None:
    """Refuse trainer settings TRL accepts but that fail (or mean nothing here) once the model has loaded; warn
    about curriculum targets no completion can reach."""
    if args.max_steps < 0:
        raise ConfigError(f"trainer.max_steps must be >= 0 (the curriculum plans every step), got {args.max_steps}")
    if args.max_completion_length is None or args.max_completion_length < 1:
        raise ConfigError(f"trainer.max_completion_length must be >= 1, got {args.max_completion_length}")
    if not args.temperature > 0:
        raise ConfigError(f"trainer.temperature must be > 0 (GRPO samples its completions), got {args.temperature}")
    if (top := highest_target(cfg.curriculum)) > args.max_completion_length:
        log.warning(
            "curriculum targets reach %d tokens, more than trainer.max_completion_length %d: no completion can "
            "meet them",
            top,
            args.max_completion_length,
        )


def check_sources(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` unless the base model, the starting adapter and the dataset can be had.

    Local paths must exist (a ``.gguf`` whole), hub ids must be in the local cache or on a reachable hub; nothing
    is downloaded or loaded.
    """
    from l1lite.core.data import check_available as check_dataset

    name = cfg.model.name
    if name.endswith(".gguf"):
        check_gguf(name, "model.name")
    elif not name.startswith(BUILTIN_PREFIX):
        check_available(name, "model.name")
    if cfg.model.adapter and not (Path(cfg.model.adapter) / "adapter_config.json").is_file():
        raise ConfigError(f"model.adapter {cfg.model.adapter}: not a PEFT adapter folder (no adapter_config.json)")
    check_dataset(cfg.data)


def checkpoint_problem(checkpoint: str | Path) -> str | None:
    """What makes ``checkpoint`` unusable for a resume (naming the file), or None when it is whole.

    ``curriculum.json`` is written last, so a kill mid-save leaves a checkpoint without it; the JSON files must
    parse, every safetensors file (the adapter) must hold all the tensor data its header promises, and every
    torch file (``optimizer.pt``, ``scheduler.pt``, ``rng_state.pth``, ``training_args.bin``) must be a whole zip
    archive, as ``torch.save`` writes it (its central directory is at the end: a cut or garbage file has none).
    """
    from safetensors import safe_open

    folder = Path(checkpoint)
    if not (folder / STATE_FILE).is_file():
        return f"{folder / STATE_FILE} is missing (the save was cut short)"
    for name in (STATE_FILE, TRAINER_STATE):
        try:
            json.loads((folder / name).read_text())
        except (OSError, ValueError) as e:
            return f"{folder / name} is unreadable or not valid JSON ({str(e).splitlines()[0]})"
    for weights in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except Exception as e:  # safetensors raises its own SafetensorError (not an OSError) on a cut file
            return f"{weights} is truncated or corrupt ({str(e).splitlines()[0]})"
    for state in sorted(p for pattern in ("*.pt", "*.pth", "*.bin") for p in folder.glob(pattern)):
        try:
            with zipfile.ZipFile(state) as archive:
                archive.infolist()
        except (OSError, zipfile.BadZipFile) as e:
            return f"{state} is truncated or corrupt (not a torch.save archive: {str(e).splitlines()[0]})"
    return None


def last_checkpoint(output_dir: str | Path) -> str | None:
    """Newest whole checkpoint (see :func:`checkpoint_problem`); each newer broken one is skipped with a warning."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    for folder in sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        problem = checkpoint_problem(folder)
        if problem is None:
            return str(folder)
        log.warning("skipping %s: %s", folder.name, problem)
    return None


def train(
    cfg: TrainConfig,
    resume: bool | str = False,
    callbacks: list | None = None,
    gpu: str | None = None,
    force: bool = False,
    show_plan: bool = False,
) -> dict[str, Any]:
    """Run training; returns the summary written to ``summary.json``.

    Args:
        cfg (`TrainConfig`):
            The run.
        resume (`bool` or `str`, *optional*, defaults to `False`):
            Resume from the newest whole checkpoint (`True`) or from this one.
        callbacks (`list`, *optional*):
            Extra TrainerCallbacks.
        gpu (`str`, *optional*):
            The card the memory plan checks against instead of the detected one (``--gpu``: a name or ``NGB``).
        force (`bool`, *optional*, defaults to `False`):
            Train even when the planned peak exceeds the GPU.
        show_plan (`bool`, *optional*, defaults to `False`):
            Print the memory and time plan first.
    """
    backend, why, args = check_train_config(cfg, gpu=gpu, force=force, show_plan=show_plan)
    out = Path(cfg.output_dir)
    checkpoint = None
    if resume:
        checkpoint = resume if isinstance(resume, str) else last_checkpoint(out)
        if checkpoint is None:
            raise ConfigError(f"--resume: no complete checkpoint found in {out}")
        if (problem := checkpoint_problem(checkpoint)) is not None:
            raise ConfigError(f"--resume {checkpoint}: {problem}")
        if args.world_size > 1 and args.device.type == "cpu" and (args.optim != "sgd" or args.optim_args):
            raise ConfigError(
                f"--resume of a {args.world_size}-process CPU run fails in transformers 5.17: it loads the optimizer "
                f"state onto {args.device} (accelerate 1.15's CPU device), which torch.load refuses; resume on GPUs, "
                "in one process, or train with trainer.optim=sgd (no optimizer state to load)"
            )
    elif any(out.glob("checkpoint-*")):
        raise ConfigError(f"{out} already has checkpoints: pass --resume or choose another output_dir")

    from trl import GRPOTrainer

    from l1lite.core.data import load_problems
    from l1lite.train.rewards import build_reward_funcs
    from l1lite.train.schedule import CurriculumCallback, prompts_per_step, schedule_dataset

    log.info("backend: %s (%s), process %d of %d", backend, why, args.process_index, args.world_size)
    main = args.process_index == 0
    with args.main_process_first(desc="model and data"):  # the main process fills the caches first
        model, tokenizer = backends.load(backend, cfg.model, cfg.lora, cfg.rollouts)
        problems = load_problems(cfg.data, tokenizer, prompt_cfg=cfg.prompt, max_budget=cfg.curriculum.hi)
    per_step = prompts_per_step(args)
    curriculum = Curriculum(cfg.curriculum, prompts_per_step=per_step)
    if checkpoint:
        state = load_curriculum_state(checkpoint)
        if state is not None:
            curriculum.load_state_dict(state)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))

    start = time.time()
    rollouts = vllm_rollouts(cfg, args, model, backend)  # before the trainer, whose seeding comes after vLLM's
    resumed = checkpoint is not None
    supervised = hindsight_start(cfg, backend, model, tokenizer, problems, out, args, resumed, rollouts)
    adapter_dir = out / ADAPTER_DIR
    if args.max_steps == 0:  # the hindsight start alone
        model.save_pretrained(str(adapter_dir))
        tokenizer.save_pretrained(str(adapter_dir))
        history, global_step, loss = [], 0, None
    else:
        trainer = GRPOTrainer(
            model=model,
            processing_class=tokenizer,
            reward_funcs=build_reward_funcs(cfg.reward),
            args=args,
            train_dataset=schedule_dataset(problems, curriculum, cfg.prompt, args.max_steps * per_step, args.seed),
            callbacks=[CurriculumCallback(curriculum), *(callbacks or [])],
            rollout_func=rollouts,
        )
        follow_steps(trainer, "train")
        result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model(str(adapter_dir))  # the adapter and tokenizer, gathered from every rank, by the main
        history, global_step, loss = trainer.state.log_history, trainer.state.global_step, result.training_loss
    summary = {
        "backend": backend,
        "backend_reason": why,
        "base_model": cfg.model.name,
        "global_step": global_step,
        "prompts_per_step": per_step,
        "world_size": args.world_size,
        "resumed_from": checkpoint,
        "hindsight": supervised,
        "train_loss": loss,
        "wall_seconds": round(time.time() - start, 2),
        "adapter": str(adapter_dir),
        "last_metrics": {
            k: v for e in history for k, v in e.items() if k.startswith(("lcpo/", "reward", "loss", "completions/"))
        },
        "curriculum": curriculum.state_dict(),
    }
    if main:
        record_provenance(adapter_dir, cfg.model.name)
        (out / "log_history.json").write_text(json.dumps(history, indent=1))
        (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def hindsight_start(
    cfg: TrainConfig,
    backend: str,
    model: Any,
    tokenizer: Any,
    problems: Any,
    out: Path,
    args: Any,
    resumed: bool,
    rollouts: Any = None,
) -> dict[str, Any] | None:
    """The config's hindsight start on ``model`` (:mod:`l1lite.train.hindsight`): its figures, or None without one.

    A resumed run's checkpoint already holds the supervised weights: the figures are read back, nothing reruns.
    With vLLM rollouts (``rollouts``) their engine samples the answers, with the starting adapter if there is one.
    """
    if not cfg.hindsight.problems:
        return None
    from l1lite.train import hindsight

    record = out / hindsight.FOLDER / SUMMARY_FILE
    if resumed:
        return json.loads(record.read_text()) if record.is_file() else None
    sampling = backends.generating(backend, model)
    sampler = None
    if rollouts is not None:

        def sampler(prompts: list[str], max_tokens: int, temperature: float, bar: Bar) -> list[tuple[list[int], bool]]:
            rows = rollouts.engine.generate(
                prompts, max_tokens, temperature=temperature, seed=args.seed, adapter=cfg.model.adapter, progress=bar
            )
            return [(r.ids, r.ended) for r in rows]

    figures = hindsight.run(
        model, tokenizer, problems, cfg.hindsight, cfg.prompt, cfg.reward, out, args, sampling, sampler
    )
    if rollouts is not None:
        figures["engine_seconds"] = rollouts.engine.start_seconds
    record.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def vllm_rollouts(cfg: TrainConfig, args: Any, model: Any, backend: str) -> Any:
    """The vLLM ``rollout_func`` for the PEFT ``model`` when ``rollouts.engine`` is vllm, else None (and under Unsloth,
    whose own engine generates).

    See :mod:`l1lite.train.rollouts`. Built before the trainer, whose seeding then comes after vLLM's (an
    in-process engine seeds the process).
    """
    if engine_for(cfg.rollouts, backend) != "vllm" or backend == "unsloth":
        return None
    from l1lite.train.rollouts import VllmRollouts

    lora = model.peft_config[model.active_adapter]  # model.adapter may have another rank than the lora section
    rank = max([lora.r, *(lora.rank_pattern or {}).values()])
    longest = max(args.max_completion_length or 0, cfg.hindsight.max_tokens if cfg.hindsight.problems else 0)
    length = longest and cfg.data.max_prompt_tokens + longest
    return VllmRollouts(
        resolve_model(cfg.model.name), cfg.output_dir, cfg.rollouts, rank, max_model_len=length, seed=args.seed
    )


def record_provenance(adapter_dir: Path, base: str) -> None:
    """Write :data:`~l1lite.core.models.PROVENANCE` into ``adapter_dir``: the base's name and its weights' fingerprint.

    Export refuses a base of the same name and shapes whose fingerprint differs. A base with no local
    safetensors (e.g. loaded through Unsloth's own 4-bit copy) records the name only.
    """
    base_dir = local_dir(resolve_model(base))
    has_weights = base_dir is not None and any(base_dir.glob("*.safetensors"))
    record = {"base_model": base, "fingerprint": fingerprint(base_dir) if has_weights else None}
    (adapter_dir / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n")
