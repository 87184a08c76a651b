"""Training engine on CPU with the tiny model: backends, metrics, adapters, kill -9 and resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from l1lite.core.config import ConfigError, TrainConfig, load_config
from l1lite.core.precision import precision_for
from l1lite.train import loaders as backends
from l1lite.train.run import check_train_config, train

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo-cpu.yaml"


def _overrides(tiny, out, *extra):
    return [f"model.name={tiny}", f"output_dir={out}", "logging.report_to=[none]", "trainer.save_strategy=no", *extra]


def test_backend_choice_without_cuda_falls_back_to_plain():
    name, why = backends.choose("auto")
    assert name == "plain" and "no CUDA" in why
    assert backends.choose("bnb") == ("bnb", "requested in config (model.backend)")
    with pytest.raises(ConfigError, match="model.backend 'gpu'"):
        backends.choose("gpu")


def test_unsloth_backend_refused_with_reason():
    with pytest.raises(ConfigError, match="model.backend 'unsloth' is not usable here: unsloth"):
        backends.choose("unsloth")


@pytest.mark.parametrize("backend", ["plain", "bnb"])
def test_training_logs_metrics_and_saves_loadable_adapter(tiny_model_dir, tmp_path, backend):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / backend
    cfg = load_config(
        TrainConfig,
        DEMO,
        _overrides(
            tiny_model_dir,
            out,
            f"model.backend={backend}",
            f"model.load_in_4bit={backend == 'bnb'}",
            "trainer.max_steps=2",
            "trainer.max_completion_length=16",
        ),
    )
    summary = train(cfg)
    assert summary["backend"] == backend and summary["global_step"] == 2
    history = json.loads((out / "log_history.json").read_text())
    keys = {k for entry in history for k in entry}
    assert {"loss", "lcpo/rel_len_error", "lcpo/accuracy", "completions/mean_length"} <= keys
    assert json.loads((out / "summary.json").read_text())["adapter"] == str(out / "adapter")
    assert (out / "config.yaml").is_file()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(base, out / "adapter")
    assert any("lora_A" in n for n, _ in model.named_parameters())


def test_bnb_backend_is_4bit_without_cpu_repacking(tiny_model_dir):
    import bitsandbytes as bnb

    cfg = load_config(TrainConfig, DEMO, [f"model.name={tiny_model_dir}", "model.backend=bnb"])
    model, _ = backends.load("bnb", cfg.model, cfg.lora)
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 7 * 2  # every projection of both layers
    assert not any(m.support_avx512bf16_for_cpu for m in layers)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("reward.mode=exactt", "reward.mode 'exactt'"),
        ("reward.grader=nope", "reward.grader 'nope'"),
        ("curriculum.scheduler=bogus", "curriculum.scheduler 'bogus'"),
    ],
)
def test_train_config_is_checked_before_any_model_loads(tmp_path, override, needle):
    cmd = [sys.executable, "-m", "l1lite.cli", "train", "--config", "l1-exact", "--set", override]
    proc = subprocess.run(
        cmd + ["--set", "model.name=/nonexistent/model"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr[-2000:]  # loading /nonexistent/model would be a traceback
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("l1lite train: error: ") and needle in proc.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("data.preset=mmlu", "data.preset 'mmlu'"),
        ("data.dataset=missing.jsonl", "dataset file not found: missing.jsonl"),
        ("model.backend=gpu", "model.backend 'gpu'"),
        ("model.name=l1lite:huge", "built-in model 'l1lite:huge'"),
        ("reward.custom=[nosuchpkg:f]", "reward.custom 'nosuchpkg:f'"),
        ("trainer.lerning_rate=0.1", "trainer.lerning_rate"),
        ("trainer.num_generations=3", "num_generations"),
        ("trainer.use_vllm=true", "trainer.use_vllm needs a CUDA GPU"),
    ],
)
def test_check_train_config_names_the_culprit(override, needle):
    cfg = load_config(TrainConfig, "l1-exact", ["model.name=/nonexistent/model", "logging.report_to=[none]", override])
    with pytest.raises(ConfigError, match=re.escape(needle)):
        check_train_config(cfg)


@pytest.mark.parametrize("preset", ["l1-exact-vllm", "l1-exact-vllm-server"])
def test_vllm_presets_resolve_in_grpo_config_and_are_refused_without_cuda(preset):
    sets = ["model.name=/nonexistent/model", "logging.report_to=[none]"]
    cfg = load_config(TrainConfig, ROOT / "configs" / f"{preset}.yaml", sets)
    assert cfg.trainer["use_vllm"] and cfg.trainer["vllm_mode"] in preset + "-colocate"
    with pytest.raises(ConfigError, match="trainer.use_vllm needs a CUDA GPU: vLLM does not generate on CPU"):
        check_train_config(cfg)


def test_existing_checkpoints_need_resume(tiny_model_dir, tmp_path):
    (tmp_path / "checkpoint-1").mkdir()
    cfg = load_config(TrainConfig, DEMO, _overrides(tiny_model_dir, tmp_path))
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg)


def _train_cmd(tiny, out, *extra):
    sets = [
        f"model.name={tiny}",
        f"output_dir={out}",
        "logging.report_to=[none]",
        "trainer.max_steps=5",
        "trainer.save_steps=1",
        "trainer.max_completion_length=8",
        "reward.custom=[train_recorder:record]",
        "curriculum.scheduler=linear",
        "curriculum.start=[10, 20]",
        "curriculum.end=[100, 200]",
        "curriculum.steps=5",
    ]
    cmd = [sys.executable, "-m", "l1lite.cli", "train", "--config", str(DEMO)]
    for s in sets:
        cmd += ["--set", s]
    return cmd + list(extra)


def _by_step(path, per_step=4):
    steps = {}
    for line in Path(path).read_text().splitlines():
        rec = json.loads(line)
        steps.setdefault(rec["step"], []).append((rec["target"], rec["prompt"]))
    # a step cut by the kill is redone after resume: keep the last complete group of completions
    return {s: recs[-per_step:] for s, recs in steps.items()}


@pytest.mark.slow
def test_kill_9_then_resume_continues_exactly(tiny_model_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run(
        _train_cmd(tiny_model_dir, full),
        env={**env, "L1LITE_RECORD": str(tmp_path / "full.jsonl")},
        check=True,
        capture_output=True,
    )

    rec = str(tmp_path / "cut.jsonl")
    proc = subprocess.Popen(  # two seconds per reward call: the kill lands before the run ends, on any machine
        _train_cmd(tiny_model_dir, cut),
        env={**env, "L1LITE_RECORD": rec, "L1LITE_RECORD_DELAY": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (cut / "checkpoint-2" / "curriculum.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / "summary.json").exists()
    last = max(int(p.name.split("-")[1]) for p in cut.glob("checkpoint-*") if (p / "curriculum.json").exists())
    assert 2 <= last < 5

    subprocess.run(
        _train_cmd(tiny_model_dir, cut, "--resume"), env={**env, "L1LITE_RECORD": rec}, check=True, capture_output=True
    )
    summary = json.loads((cut / "summary.json").read_text())
    assert summary["global_step"] == 5 and summary["resumed_from"] == str(cut / f"checkpoint-{last}")
    assert _by_step(rec) == _by_step(tmp_path / "full.jsonl")
    assert summary["curriculum"] == json.loads((full / "summary.json").read_text())["curriculum"]


@pytest.mark.slow
def test_demo_preset_trains_as_given_from_an_empty_directory(tmp_path, on_terminal):
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "L1LITE_CACHE": str(tmp_path / "cache")}  # l1lite:tiny is built there on first use
    proc = on_terminal([sys.executable, "-m", "l1lite.cli", "train", "--config", "demo-cpu"], 600, cwd=work, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "runs" / "demo-cpu" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "cache" / "tiny" / "config.json").is_file()
    # on a terminal: the steps' bar with its rate and ETA, not the trainer's log dictionaries or loading bars
    assert re.search(r"train: 100%\|█+\| 4/4 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+(step/s|s/step)\]", proc.stderr), proc.stderr
    assert "{'" not in proc.stdout + proc.stderr and "Loading weights" not in proc.stderr, proc.stdout
    assert "curriculum targets reach" not in proc.stderr  # the preset's targets fit its completions


@pytest.mark.parametrize(
    ("capability", "dtype"),
    [
        (None, "float32"),
        ((7, 5), "float16"),
        ((7, 0), "float16"),
        ((8, 0), "bfloat16"),
        ((8, 9), "bfloat16"),
        ((9, 0), "bfloat16"),
    ],
)
def test_training_precision_follows_the_compute_capability_not_is_bf16_supported(capability, dtype):
    # a T4 (7.5) reports is_bf16_supported() True but emulates it at float32 speed: it trains in float16
    assert precision_for(capability) == dtype
