"""Typed config validation and shipped presets: typos and wrong types are one-line errors, exit code 2 from the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from l1lite.core.config import ConfigError, TrainConfig, config_file, load_config, presets

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [
    "demo-cpu",
    "dial-smollm2",
    "l1-exact",
    "l1-exact-t4",
    "l1-exact-vllm",
    "l1-exact-vllm-server",
    "l1-max",
    "toy-dial",
]
LISTED = ", ".join(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_presets_load_by_name_and_path(name):
    cfg = load_config(TrainConfig, name)
    assert cfg.trainer["max_steps"] > 0 or cfg.hindsight.problems > 0  # something to train
    assert cfg.reward.mode in {"exact", "max", "dual"}
    assert load_config(TrainConfig, f"{name}.yaml") == cfg
    assert load_config(TrainConfig, ROOT / "configs" / f"{name}.yaml") == cfg
    assert config_file(name).read_text() == (ROOT / "configs" / f"{name}.yaml").read_text()  # one copy: configs/


def test_presets_are_listed_with_their_first_comment_line():
    assert list(presets()) == SHIPPED == sorted(p.stem for p in (ROOT / "configs").glob("*.yaml"))
    assert presets()["l1-exact"].startswith("L1-Exact: a hindsight start, then LCPO-Exact GRPO, on DeepSeek-R1")
    proc = subprocess.run([sys.executable, "-m", "l1lite.cli", "presets"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()] == SHIPPED
    assert all(line.split(maxsplit=1)[1] == presets()[line.split()[0]] for line in proc.stdout.splitlines())
    shown = subprocess.run([sys.executable, "-m", "l1lite.cli", "presets", "l1-max"], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout == (ROOT / "configs" / "l1-max.yaml").read_text()


def test_unknown_preset_is_one_line_error_listing_the_shipped_ones(tmp_path):
    with pytest.raises(ConfigError, match=f"unknown preset 'l1-exactt' .*shipped presets: {LISTED}"):
        load_config(TrainConfig, "l1-exactt")
    with pytest.raises(ConfigError, match="config file not found: nowhere/l1-exact.yaml"):
        load_config(TrainConfig, "nowhere/l1-exact.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "l1lite.cli", "curriculum", "preview", "--config", "l1-maxx"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    last = proc.stderr.splitlines()[-1]  # above it: whatever warnings transformers' imports print
    assert last == f"l1lite curriculum: error: unknown preset 'l1-maxx' and no such file (shipped presets: {LISTED})"


def test_a_file_in_the_working_directory_wins_over_a_preset(tmp_path):
    (tmp_path / "l1-exact.yaml").write_text("# mine\ncurriculum: {lo: 7, hi: 7}\ntrainer: {max_steps: 2}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "l1lite.cli", "curriculum", "preview", "--config", "l1-exact.yaml", "--buckets", "1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].split()[:4] == ["0-1", "7", "7", "7"]


def test_overrides_are_typed(tmp_path):
    cfg = load_config(TrainConfig, None, ["reward.alpha_exact=0.001", "lora.r=4", "curriculum.stages=[[0, 10, 20]]"])
    assert cfg.reward.alpha_exact == 0.001 and cfg.lora.r == 4 and cfg.curriculum.stages == [[0, 10, 20]]
    assert isinstance(cfg.reward.alpha_max, float)


def test_exponent_floats_without_a_dot_are_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("reward:\n  alpha_exact: 3e-4\ntrainer:\n  learning_rate: 1e-6\n  max_steps: 10\n")
    cfg = load_config(TrainConfig, path, ["reward.alpha_max=1E-3", "trainer.warmup_ratio=.1"])
    assert cfg.reward.alpha_exact == 3e-4 and cfg.reward.alpha_max == 1e-3
    assert cfg.trainer == {"learning_rate": 1e-6, "max_steps": 10, "warmup_ratio": 0.1}
    assert isinstance(cfg.trainer["max_steps"], int) and isinstance(cfg.trainer["learning_rate"], float)


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
    from l1lite.train.run import grpo_args

    cfg = load_config(TrainConfig, None, ["trainer.lerning_rate=0.1", "logging.report_to=[none]"])
    with pytest.raises(ConfigError, match="trainer.lerning_rate"):
        grpo_args(cfg, cuda=False)


def test_trainer_numbers_and_flags_are_checked_against_grpo_config():
    from l1lite.train.run import grpo_args

    for override, error in [
        ('trainer.learning_rate="1e-4"', "'trainer.learning_rate' must be float, got '1e-4'"),
        ("trainer.max_steps=2.5", "'trainer.max_steps' must be int, got 2.5"),
        ("trainer.bf16=1", "'trainer.bf16' must be bool, got 1"),
    ]:
        cfg = load_config(TrainConfig, None, [override, "logging.report_to=[none]"])
        with pytest.raises(ConfigError, match=error):
            grpo_args(cfg, cuda=False)
    cfg = load_config(TrainConfig, None, ["trainer.learning_rate=1", "trainer.lr_scheduler_type=constant"])
    args = grpo_args(cfg, cuda=False)
    assert args.learning_rate == 1.0 and isinstance(args.learning_rate, float)
    assert args.lr_scheduler_type == "constant"


def test_every_command_has_help():
    from l1lite.cli import COMMANDS

    for name in COMMANDS:
        proc = subprocess.run([sys.executable, "-m", "l1lite.cli", name, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0, (name, proc.stderr[-500:])
        assert "usage: l1lite " + name in proc.stdout
