"""GRPO rollouts through vLLM (``rollouts.engine: vllm``): TRL's ``rollout_func`` with the adapter synced by folder.

Owns the config section ``rollouts``. The trainer's PEFT adapter is saved to ``OUTPUT_DIR/vllm-adapter/step-N``
when the global step has moved ``rollouts.sync_every`` steps past the last save (only the latest folder is kept;
each save is a line of ``syncs.jsonl`` there), and vLLM generates with it as a LoRA request
(:class:`l1lite.core.vllm.Engine`, in this process): the base weights are never rewritten, so it runs on vLLM's
CPU build, whose packed weights TRL 1.14's own weight sync (``trainer.use_vllm``) cannot update. Imports vllm,
torch and TRL only inside functions; must not import the training run, export, inference or evaluation.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from l1lite.core.config import ConfigError, RolloutsConfig
from l1lite.core.vllm import INSTALL, Engine, available

log = logging.getLogger(__name__)
ENGINES = ("auto", "transformers", "vllm")
FOLDER = "vllm-adapter"  # in the run's output folder: step-N, the adapter vLLM generates with
SYNCS_FILE = "syncs.jsonl"  # in FOLDER: one line per save (step, folder, vLLM's LoRA id, seconds)


def engine_for(cfg: RolloutsConfig, backend: str) -> str:
    """What generates the rollouts under loader ``backend``: ``transformers`` or ``vllm`` (``auto``: vLLM under
    Unsloth when it is installed, as Unsloth's GRPO recipe does, else TRL's ``generate``)."""
    if cfg.engine != "auto":
        return cfg.engine
    return "vllm" if backend == "unsloth" and available() else "transformers"


def check_rollouts(cfg: RolloutsConfig, args: Any, backend: str) -> None:
    """Raise :class:`ConfigError` naming the first unusable ``rollouts.*`` setting.

    Args:
        cfg: the ``rollouts`` section.
        args: the resolved ``trl.GRPOConfig`` (l1lite's vLLM rollouts exclude TRL's own vLLM and several processes).
        backend: the model loader (under ``unsloth``, vLLM rollouts are Unsloth's ``fast_inference``).
    """
    if cfg.engine not in ENGINES:
        raise ConfigError(f"rollouts.engine must be one of {' | '.join(ENGINES)}, got {cfg.engine!r}")
    for key, ok, need in (
        ("sync_every", cfg.sync_every >= 1, ">= 1"),
        ("kv_cache_gib", cfg.kv_cache_gib > 0, "> 0"),
        ("gpu_memory_utilization", 0 < cfg.gpu_memory_utilization <= 1, "in (0, 1]"),
    ):
        if not ok:
            raise ConfigError(f"rollouts.{key} must be {need}, got {getattr(cfg, key)!r}")
    if engine_for(cfg, backend) != "vllm":
        return
    if backend != "unsloth":  # l1lite's engine; Unsloth's own (fast_inference) goes through TRL's use_vllm
        if args.use_vllm:
            raise ConfigError("rollouts.engine vllm brings its own vLLM engine: leave trainer.use_vllm false")
        if args.world_size > 1:
            raise ConfigError(f"rollouts.engine vllm runs in one process, not {args.world_size}")
    if not available():
        raise ConfigError(f"rollouts.engine vllm needs vLLM: {INSTALL}")


class VllmRollouts:
    """TRL 1.14's ``rollout_func``: the trainer's current adapter, saved to a folder, generates through vLLM.

    TRL's sampler already repeats each prompt ``num_generations`` times (``num_generations_eval`` in evaluation), so
    each prompt entry gets one completion, as TRL's colocated vLLM does (vLLM's prefix cache shares the repeated
    prompts' prefill). Sampling follows the trainer's arguments: ``temperature``, ``top_p``, ``top_k``, ``min_p``,
    ``repetition_penalty`` and ``max_completion_length``, then ``generation_kwargs`` (``vllm.SamplingParams`` fields).

    Args:
        model: the base model's folder (as :func:`l1lite.core.models.resolve_model` gives it).
        out: the run's output folder (the adapter is saved under ``out/vllm-adapter``).
        cfg: the ``rollouts`` section.
        lora_rank: the trained adapter's rank.
        max_model_len: prompt plus completion tokens per sequence (`None`: the model's limit).
        seed: vLLM's sampling seed.
    """

    def __init__(
        self,
        model: str,
        out: str | Path,
        cfg: RolloutsConfig,
        lora_rank: int,
        max_model_len: int | None = None,
        seed: int = 0,
    ) -> None:
        self.cfg = cfg
        self.folder = Path(out) / FOLDER
        self.adapter: Path | None = None  # the folder vLLM generates with
        self.saved_step: int | None = None
        self.engine = Engine(
            model,
            max_lora_rank=lora_rank,
            max_model_len=max_model_len,
            kv_cache_gib=cfg.kv_cache_gib,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            seed=seed,
        )

    def sync(self, trainer: Any) -> Path:
        """Save the trainer's adapter when ``sync_every`` steps have passed since the last save; its folder."""
        step = trainer.state.global_step
        if self.adapter is not None and step - self.saved_step < self.cfg.sync_every:
            return self.adapter
        start = time.time()
        folder = self.folder / f"step-{step}"
        if folder.exists():
            shutil.rmtree(folder)
        trainer.accelerator.unwrap_model(trainer.model).save_pretrained(str(folder))
        if self.adapter is not None and self.adapter != folder:
            shutil.rmtree(self.adapter, ignore_errors=True)
        self.adapter, self.saved_step = folder, step
        record = {"step": step, "adapter": str(folder), "lora_id": self.engine.lora(folder).lora_int_id}
        with open(self.folder / SYNCS_FILE, "a") as fh:
            fh.write(json.dumps({**record, "seconds": round(time.time() - start, 3)}) + "\n")
        log.info("vLLM rollouts: adapter of step %d saved to %s (LoRA id %d)", step, folder, record["lora_id"])
        return folder

    def tokenize(self, prompts: list, trainer: Any) -> list[list[int]]:
        """Prompt token ids as TRL's own generation makes them (chat template with the generation prompt)."""
        tokenizer = trainer.processing_class
        if isinstance(prompts[0], str):
            return tokenizer(text=prompts)["input_ids"]
        return tokenizer.apply_chat_template(
            conversation=prompts,
            chat_template=trainer.chat_template,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            **trainer.chat_template_kwargs,
        )["input_ids"]

    def __call__(self, prompts: list, trainer: Any) -> dict[str, list]:
        """Completions of ``prompts`` (one per entry): ``prompt_ids``, ``completion_ids`` and ``logprobs``."""
        adapter = self.sync(trainer)
        args = trainer.args
        prompt_ids = self.tokenize(prompts, trainer)
        start = time.time()
        sampling = {
            "max_tokens": args.max_completion_length,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "top_k": args.top_k or 0,
            "min_p": args.min_p or 0.0,
            "repetition_penalty": args.repetition_penalty,
            **(args.generation_kwargs or {}),  # as in TRL's own vLLM generation: they override the fields above
        }
        rows = self.engine.generate(prompt_ids, adapter=adapter, logprobs=True, **sampling)
        tokens, seconds = sum(len(r.ids) for r in rows), time.time() - start
        log.info(
            "vLLM rollouts: %d completions, %d tokens in %.1f s (%.0f tokens/s)",
            len(rows),
            tokens,
            seconds,
            tokens / seconds,
        )
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": [r.ids for r in rows],
            "logprobs": [r.logprobs for r in rows],
        }
