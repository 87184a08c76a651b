"""Typed config validation: typos and wrong types are one-line errors, exit code 2 from the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from l1lite.config import ConfigError, TrainConfig, load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["demo-cpu.yaml", "l1-exact.yaml", "l1-max.yaml"])
def test_presets_load(name):
    cfg = load_config(TrainConfig, ROOT / "configs" / name)
    assert cfg.trainer["max_steps"] > 0
    assert cfg.reward.mode in {"exact", "max", "dual"}


def test_overrides_are_typed(tmp_path):
    cfg = load_config(TrainConfig, None, ["reward.alpha_exact=0.001", "lora.r=4", "curriculum.stages=[[0, 10, 20]]"])
    assert cfg.reward.alpha_exact == 0.001 and cfg.lora.r == 4 and cfg.curriculum.stages == [[0, 10, 20]]
    assert isinstance(cfg.reward.alpha_max, float)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("reward.alpha_exct=0.1", "reward.alpha_exct"),
        ("rewardz.mode=exact", "rewardz"),
        ("lora.r=big", "lora.r"),
        ("reward.require_think_close=3", "reward.require_think_close"),
        ("curriculum.start=5", "curriculum.start"),
    ],
)
def test_bad_keys_and_types_are_named(override, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(TrainConfig, None, [override])


def test_yes_no_stay_strings_for_grpo_fields(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer:\n  save_strategy: no\n  report_to: none\nmodel:\n  load_in_4bit: false\n")
    cfg = load_config(TrainConfig, path, ["trainer.logging_strategy=no", "model.gradient_checkpointing=true"])
    assert cfg.trainer == {"save_strategy": "no", "report_to": "none", "logging_strategy": "no"}
    assert cfg.model.load_in_4bit is False and cfg.model.gradient_checkpointing is True


def test_typo_in_file_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  nmae: x\n")
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, path)
    assert "bad.yaml" in str(err.value) and "model.nmae" in str(err.value)


def test_cli_exit_code_2_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trainer: {max_steps: 1}\nreward:\n  mdoe: exact\n")
    proc = subprocess.run(
        [sys.executable, "-m", "l1lite.cli", "train", "--config", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "reward.mdoe" in lines[0]


def test_unknown_trainer_key_is_named_by_grpo_config():
    from l1lite.train import grpo_args

    cfg = load_config(TrainConfig, None, ["trainer.lerning_rate=0.1", "logging.report_to=[none]"])
    with pytest.raises(ConfigError, match="trainer.lerning_rate"):
        grpo_args(cfg, cuda=False)


def test_every_command_has_help():
    from l1lite.cli import COMMANDS

    for name in COMMANDS:
        proc = subprocess.run([sys.executable, "-m", "l1lite.cli", name, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0, (name, proc.stderr[-500:])
        assert "usage: l1lite " + name in proc.stdout
