"""The memory and time plan (``l1lite plan``): its arithmetic against hand-computed cases, the GPU table, the
verdict and suggestions, and ``l1lite train`` refusing an over-budget run before any model loads.

The plan's figures against measured GRPO steps are ``benchmarks/plan_memory.py`` (minutes), not a test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from l1lite.cli import main
from l1lite.core.config import PAPER_MODEL, ConfigError, TrainConfig, load_config, presets
from l1lite.core.models import TINY
from l1lite.train import plan as planner
from l1lite.train.plan import GIB, MIB, SHAPES, parse_gpu

ROOT = Path(__file__).resolve().parents[1]
R1 = SHAPES[PAPER_MODEL]
ALL = list(planner.PROJECTIONS)


def preset(name: str, *overrides: str) -> TrainConfig:
    """A shipped preset with ``--set`` overrides."""
    return load_config(TrainConfig, name, list(overrides))


# the run the issue sizes by hand: l1-exact as first shipped (GRPO only, 4 prompts x 8 rollouts in micro-batches of 8)
VLLM = (
    "trainer.use_vllm=true",
    "trainer.vllm_mode=colocate",
    "trainer.vllm_gpu_memory_utilization=0.3",
    "trainer.vllm_enable_sleep_mode=true",
)
ISSUE = (
    "model.backend=auto",
    "lora.r=32",
    "data.max_prompt_tokens=512",
    "hindsight.problems=0",
    "trainer.per_device_train_batch_size=8",
    "trainer.gradient_accumulation_steps=4",
    "trainer.num_generations=8",
    "trainer.max_completion_length=4096",
    "trainer.max_steps=700",
    "trainer.optim=paged_adamw_8bit",
    "trainer.gradient_checkpointing=true",
    "trainer.use_vllm=false",
)


def issue(*overrides: str) -> TrainConfig:
    """The issue's l1-exact run (:data:`ISSUE`) with more overrides."""
    return preset("l1-exact", *ISSUE, *overrides)


def component(p: planner.Plan, name: str) -> planner.Component:
    """The plan's component called ``name``."""
    return next(c for c in [*p.components, *p.hindsight] if c.name == name)


def test_logits_of_the_issue_are_ten_gigabytes():
    # 8 completions x 4096 tokens x 151,936 vocabulary x 2 bytes
    assert planner.logits_bytes(8, 4096, 151936, 2) == 9_957_277_696  # ~9.96e9 bytes, ~10 GB


def test_l1_exact_logits_are_fp32_with_their_gradient():
    # accelerate's mixed precision returns fp32 logits over logits_to_keep + 1 = 4097 positions; TRL's kernel saves
    # them and backward adds an fp32 gradient: 2 x 8 x 4097 x 151936 x 4 bytes
    p = planner.plan(issue(), parse_gpu("A100-80"))
    assert component(p, "logits and their gradient").bytes == 39_838_834_688


def test_model_arithmetic_of_the_paper_model():
    assert R1.params() == 1_777_088_000  # DeepSeek-R1-Distill-Qwen-1.5B: 1.78 B
    assert R1.linear_params() == 46_792_704  # 2 x 1536^2 + 2 x 1536 x 256 + 3 x 1536 x 8960 per layer
    assert R1.kv_bytes_per_token(2) == 28_672  # 2 (k, v) x 28 layers x 2 kv heads x 128 x 2 bytes: 28 KiB
    assert planner.lora_params(R1, 32, ALL) == 36_929_536  # 28 x 32 x (3072 + 1792 + 1792 + 3072 + 3 x 10496)


def test_l1_exact_components_by_hand():
    p = planner.plan(issue(), parse_gpu("A100-80"))
    assert p.backend == "bnb"  # auto on a GPU, planned without Unsloth
    # nf4 decoder linears (0.5 byte + double-quantized absmax) and the rest in fp32 (prepare_model_for_kbit_training)
    weights = 28 * 46_792_704 * (0.5 + 1 / 64 + 4 / 16384) + (2 * 151936 * 1536 + 28 * (2 * 1536 + 2048) + 1536) * 4
    assert component(p, "base weights").bytes == pytest.approx(weights)
    assert component(p, "LoRA weights (fp32)").bytes == 4 * 36_929_536
    assert component(p, "optimizer states").bytes == 2 * 36_929_536  # paged_adamw_8bit
    assert component(p, "KV cache").bytes == 32 * 4608 * 28_672  # 4 prompts x 8 rollouts x (512 + 4096) tokens
    assert component(p, "checkpointed layer inputs").bytes == pytest.approx(
        28 * 8 * 4608 * 1536 * 4 + 8 * 4608 * 4608 + 8 * 4608 * 1536 * 4  # fp32 residual, bool mask, final norm
    )
    assert p.peak == pytest.approx(p.phase("static") + p.phase("training"))  # training sets the peak
    assert p.settings.prompts_per_step == 4 and p.settings.sequences == 32


def test_layer_activations_match_what_autograd_saves():
    # the tiny Qwen2 (hidden 64, MLP 128, 4 heads) with LoRA r8 on all projections and a 140-token batch saves
    # 1226 elements per layer per token for backward (counted with saved_tensors_hooks): norms 2 x 64 + 2 + 4,
    # LoRA inputs 64 + 64 + 64 + 128 and outputs 7 x 8, q/k/v 3 x 64, MLP 3 x 128, the float mask 140
    assert planner.layer_elements(SHAPES[TINY], 8, ALL, 140) == {"act": 952, "norm": 134, "mask": 140}
    # without LoRA on the MLP its inputs are not saved
    assert planner.layer_elements(SHAPES[TINY], 8, ["q_proj", "v_proj"], 140)["act"] == 64 + 2 * 8 + 192 + 384
    # bnb: fp32 norm outputs, so q, k, v and gate, up each save an autocast copy of their input
    assert planner.layer_elements(SHAPES[TINY], 8, ALL, 140, input_copies=True)["act"] == 952 + 3 * 64


def test_optimizer_states():
    assert planner.optimizer_bytes_per_param("adamw_torch_fused") == 8
    assert planner.optimizer_bytes_per_param("paged_adamw_8bit") == 2
    assert planner.optimizer_bytes_per_param("sgd") == 0


def test_gpu_table_and_sizes():
    t4 = parse_gpu("t4")
    assert (t4.name, t4.memory, t4.cc, t4.bandwidth) == ("T4", 15360 * MIB, 7.5, 320e9)
    assert parse_gpu("A100-80").cc == 8.0 and parse_gpu("H100").cc == 9.0
    custom = parse_gpu("24GB")
    assert custom.memory == 24 * GIB and custom.bandwidth is None and custom.cuda
    assert parse_gpu("1.5gb").memory == int(1.5 * GIB)
    for bad in ("V100", "0GB", "24", "GB"):
        with pytest.raises(ConfigError, match="unknown GPU"):
            parse_gpu(bad)


def test_gpu_from_torch_names():
    assert planner.gpu_from_name("Tesla T4", 15_000_000_000).bandwidth == 320e9
    assert planner.gpu_from_name("Tesla T4", 15_000_000_000).memory == 15_000_000_000
    assert planner.gpu_from_name("NVIDIA A100-SXM4-80GB", 85 * GIB).bandwidth == 2039e9
    assert planner.gpu_from_name("NVIDIA A100-PCIE-40GB", 40 * GIB).bandwidth == 1555e9
    assert planner.gpu_from_name("NVIDIA GeForce RTX 4090", 24 * GIB).flops == 165e12
    assert planner.gpu_from_name("NVIDIA L4", 22 * GIB).cc == 8.9
    assert planner.gpu_from_name("NVIDIA B200", 180 * GIB).bandwidth is None


def test_trainer_defaults_are_trls():
    from trl import GRPOConfig

    fields = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
    assert {k: v for k, v in planner.TRAINER_DEFAULTS.items() if k != "max_steps"} == {
        k: fields[k] for k in planner.TRAINER_DEFAULTS if k != "max_steps"
    }


@pytest.mark.parametrize("name", sorted(presets()))
def test_batch_arithmetic_is_grpoconfigs(name):
    from l1lite.train.run import grpo_args
    from l1lite.train.schedule import prompts_per_step

    cfg = preset(name, "trainer.use_vllm=false")  # GRPOConfig checks vLLM settings only where it runs
    args = grpo_args(cfg, cuda=False)
    s = planner.settings(cfg)
    assert (s.steps_per_generation, s.sequences) == (args.steps_per_generation, args.generation_batch_size)
    assert s.prompts_per_step == prompts_per_step(args)
    assert (s.max_steps, s.checkpointing) == (args.max_steps, args.gradient_checkpointing)


@pytest.mark.parametrize("name", sorted(presets()))
@pytest.mark.parametrize("gpu", ["T4", "24GB", "A100-80"])
def test_every_preset_plans(name, gpu):
    p = planner.plan(preset(name), parse_gpu(gpu), name=name)
    text = planner.format_plan(p)
    assert f"plan {name}: " in text and "peak " in text
    assert p.peak > 0


def test_verdict_and_nearest_settings_that_fit():
    cfg = issue()
    assert planner.plan(cfg, parse_gpu("A100-80")).fits
    p = planner.plan(cfg, parse_gpu("24GB"))
    assert not p.fits and p.largest().name == "logits and their gradient"
    keys, trial = planner.nearest_fit(cfg, p)
    assert trial.fits
    # the same recipe in smaller micro-batches: 4 prompts x 8 rollouts per step, completions untouched
    assert keys["per_device_train_batch_size"] * keys["gradient_accumulation_steps"] == 32
    assert trial.settings.prompts_per_step == 4 and trial.settings.completion == 4096
    assert any("per_device_train_batch_size" in s for s in p.suggestions)


def test_checkpointing_is_the_first_fix():
    cfg = issue(
        "trainer.gradient_checkpointing=false",
        "trainer.per_device_train_batch_size=1",
        "trainer.gradient_accumulation_steps=32",
    )
    p = planner.plan(cfg, parse_gpu("16GB"))
    assert component(p, "activations (all layers)").bytes > 10 * GIB and not p.fits
    assert p.suggestions[0].startswith("fits: --set trainer.gradient_checkpointing=true")


def test_recipe_changes_only_when_layouts_do_not_fit():
    p = planner.plan(issue(), parse_gpu("8GB"))
    keys, trial = planner.nearest_fit(issue(), p)
    assert trial.fits and keys["max_completion_length"] < 4096 and keys["per_device_train_batch_size"] == 1


def test_time_verdict_and_steps_that_finish():
    p = planner.plan(issue(), parse_gpu("A100-80"))
    step = sum(p.step_seconds.values())
    assert p.total_seconds == pytest.approx(700 * step) and p.finishes is False
    hint = next(s for s in p.suggestions if s.startswith("finishes in 12 h"))
    steps = int(hint.split("trainer.max_steps=")[1].split()[0])
    assert planner.plan(issue(f"trainer.max_steps={steps}"), parse_gpu("A100-80")).finishes
    assert not planner.plan(issue(f"trainer.max_steps={steps + 1}"), parse_gpu("A100-80")).finishes
    assert planner.plan(issue(), parse_gpu("24GB")).total_seconds is None  # no throughput for a size


def test_vllm_colocate_reserves_its_share_while_generating():
    p = planner.plan(issue(*VLLM), parse_gpu("24GB"))
    reserved = [c for c in p.components if c.name.startswith("vLLM")]
    assert [(c.phase, c.bytes) for c in reserved] == [("generation", 0.3 * 24 * GIB)]  # sleep mode: not training
    assert not any(c.name == "KV cache" for c in p.components)
    awake = planner.plan(issue(*VLLM, "trainer.vllm_enable_sleep_mode=false"), parse_gpu("24GB"))
    assert [c.phase for c in awake.components if c.name.startswith("vLLM")] == ["generation", "training"]
    server = planner.plan(issue("trainer.use_vllm=true", "trainer.vllm_mode=server"), parse_gpu("24GB"))
    assert server.phase("generation") == 0  # generation runs on the server's GPU


def test_hindsight_only_preset_plans_its_start():
    start = ("trainer.max_steps=0", "hindsight.batch_size=8", "hindsight.micro_batch_size=0")
    start += ("hindsight.generation_batch_size=16",)
    p = planner.plan(preset("dial-smollm2", *start), parse_gpu("T4"))
    assert p.settings.max_steps == 0 and p.hindsight and p.peak == p.stage_peak(p.hindsight)
    small = planner.plan(preset("dial-smollm2", *start), parse_gpu("2GB"))
    # the supervised fine-tune sets the peak: checkpointing first, then fewer pairs per forward pass
    assert not small.fits and small.suggestions[0].startswith(
        "hindsight start fits: --set trainer.gradient_checkpointing=true"
    )
    fixed = small.suggestions[0].split("fits: ")[1].split(" (")[0].replace("--set ", "").split()
    assert planner.plan(preset("dial-smollm2", *start, *fixed), parse_gpu("2GB")).fits


def test_shape_from_a_local_config(tiny_model_dir):
    assert planner.model_shape(str(tiny_model_dir)) == SHAPES[TINY]
    with pytest.raises(ConfigError, match="no shape known"):
        planner.model_shape("someone/unknown-model")


def test_cpu_is_planned_but_never_refused(monkeypatch):
    monkeypatch.setattr(planner, "detected_gpu", lambda: None)
    cfg = issue("trainer.gradient_checkpointing=false")  # hundreds of GiB in fp32 on a CPU
    p = planner.check_plan(cfg, "plain", show=False)
    assert p.device.name == "CPU" and not p.fits


def test_check_plan_refuses_in_one_line_unless_forced(monkeypatch):
    monkeypatch.setattr(planner, "detected_gpu", lambda: None)
    with pytest.raises(ConfigError) as refused:
        planner.check_plan(issue(), "plain", gpu="16GB", show=False)
    message = str(refused.value)
    assert "\n" not in message and "logits and their gradient" in message and "--force" in message
    assert "fix: --set trainer.per_device_train_batch_size=" in message
    assert not planner.check_plan(issue(), "plain", gpu="16GB", force=True, show=False).fits


def test_train_refuses_an_over_budget_run_before_loading(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "l1lite.cli", "train", "--config", "l1-exact", "--gpu", "2GB"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("l1lite")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[0].startswith("l1lite train: error: planned peak ") and "2GB GPU" in lines[0]
    assert "peak" in proc.stdout and "does NOT fit" in proc.stdout  # the plan is printed first
    assert not (tmp_path / "runs").exists()  # nothing written, no model loaded
    assert time.time() - start < 120


def test_plan_command(capsys):
    assert main(["plan", "--config", "l1-exact", "--gpu", "T4", *(x for o in ISSUE for x in ("--set", o))]) == 0
    out = capsys.readouterr().out
    assert "does NOT fit" in out and "suggest: fits: --set trainer.per_device_train_batch_size=" in out
    assert "does NOT finish within a 12 h session" in out
    assert main(["plan", "--config", "demo-cpu", "--gpu", "A100-80", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fits"] and data["finishes"] and data["device"] == "A100-80"
    assert main(["plan", "--config", "l1-exact", "--gpu", "V100"]) == 2
    assert capsys.readouterr().err.startswith("l1lite plan: error: unknown GPU 'V100'")
