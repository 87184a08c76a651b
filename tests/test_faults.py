"""Faults, with real processes and real files: a disk that fills up during export, and corrupt checkpoints.

The rest of the fault suite lives beside the stage it breaks: kill -9 during training then ``--resume``
(test_train.py::test_kill_9_then_resume_continues_exactly), during export then a rerun
(test_export.py::test_killed_export_leaves_no_final_file) and during eval then a byte-identical resume
(test_evaluate.py::test_resume_after_interruption_gives_the_same_summary).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import _train_cmd

from l1lite.core.models import PROVENANCE, fingerprint
from l1lite.train.run import last_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
FSIZE_LIMIT = 300_000  # bytes per file: less than the tiny model's merged weights (about 560 kB)
TMPFS_SIZE = "700k"  # room for the merged model (about 590 kB with its tokenizer), not for the GGUF too


def _export_cmd(base: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "l1lite.cli", "export", "--base", str(base), "--out", str(out), "--no-verify"]


def _no_room_to_write(proc: subprocess.CompletedProcess, out: Path) -> str:
    """Assert exit code 1 and a last stderr line naming the output that found no room; return the file's name."""
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"l1lite export: error: no room to write {out}/"), last
    return last.split(f"{out}/", 1)[1].split()[0]


def test_disk_full_on_export_writes_nothing_under_a_final_name(tiny_model_dir, tmp_path):
    """A small tmpfs (in a private mount namespace) fills up while the f16 GGUF is written."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "tmpfs", str(mount)], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode()[-200:]}")
    out = mount / "out"
    script = " ".join(map(str, _export_cmd(tiny_model_dir, out))) + f'; echo "rc=$?"; ls -A {out}'
    inside = f"mount -t tmpfs -o size={TMPFS_SIZE} tmpfs {mount} && {script}"
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", inside], env=ENV, capture_output=True, text=True)
    rc_line = next(line for line in proc.stdout.splitlines() if line.startswith("rc="))
    left = proc.stdout.split(rc_line, 1)[1].split()
    proc.returncode = int(rc_line[3:])
    assert _no_room_to_write(proc, out) == f"{tiny_model_dir.name}-f16.gguf"
    assert left == ["merged"]  # the one output that fit is whole; no GGUF, no Modelfile, no temp


def test_file_size_limit_on_export_writes_nothing_under_a_final_name(tiny_model_dir, tmp_path):
    """RLIMIT_FSIZE (SIGXFSZ ignored, so writes fail with EFBIG) stops the merged model's weights mid-write."""

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))

    out = tmp_path / "out"
    cmd = _export_cmd(tiny_model_dir, out)
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, preexec_fn=limited)
    assert _no_room_to_write(proc, out) == "merged"
    assert list(out.iterdir()) == []
    rerun = subprocess.run(cmd, env=ENV, capture_output=True, text=True)  # with room again: the same command works
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "merged", f"{tiny_model_dir.name}-f16.gguf"]


@pytest.mark.slow
def test_corrupt_checkpoint_is_skipped_or_named(tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    env = {**ENV, "L1LITE_RECORD": str(tmp_path / "record.jsonl")}
    three = ["--set", "trainer.max_steps=3"]
    done = subprocess.run(_train_cmd(tiny_model_dir, run, *three), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    full = json.loads((run / "summary.json").read_text())
    assert full["global_step"] == 3 and last_checkpoint(run) == str(run / "checkpoint-3")
    provenance = json.loads((run / "adapter" / PROVENANCE).read_text())
    assert provenance == {"base_model": str(tiny_model_dir), "fingerprint": fingerprint(tiny_model_dir)}

    cut_adapter = tmp_path / "cut-adapter"
    shutil.copytree(run, cut_adapter)
    weights = cut_adapter / "checkpoint-3" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    assert last_checkpoint(cut_adapter) == str(cut_adapter / "checkpoint-2")
    named = cut_adapter / "checkpoint-3"
    proc = subprocess.run(
        _train_cmd(tiny_model_dir, cut_adapter, *three, "--resume", str(named)), env=env, capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(f"l1lite train: error: --resume {named}: {weights} is truncated")
    )

    cut_state = tmp_path / "cut-state"
    shutil.copytree(run, cut_state)
    state = cut_state / "checkpoint-3" / "curriculum.json"
    state.write_text(state.read_text()[:20])
    proc = subprocess.run(
        _train_cmd(tiny_model_dir, cut_state, *three, "--resume"), env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "skipping checkpoint-3: " in proc.stderr and "curriculum.json is unreadable or not valid JSON" in proc.stderr
    resumed = json.loads((cut_state / "summary.json").read_text())
    assert resumed["resumed_from"] == str(cut_state / "checkpoint-2") and resumed["global_step"] == 3
    assert resumed["curriculum"] == full["curriculum"]
