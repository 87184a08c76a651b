"""The wheel carries every subpackage and the presets, and the pipeline runs from it alone, outside the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("pyproject.toml", "README.md", "l1lite", "configs")  # what setuptools reads


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the build inputs (no stale build/ folder, nothing written to the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (found,) = out.glob("l1lite-*.whl")
    return found


@pytest.mark.slow
def test_wheel_holds_every_module_and_the_presets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "l1lite").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert "l1lite/assets/math_small.jsonl" in names
    presets = sorted((ROOT / "configs").glob("*.yaml"))
    assert {p.name for p in presets} >= {"demo-cpu.yaml", "toy-dial.yaml", "l1-exact.yaml", "l1-max.yaml"}
    with zipfile.ZipFile(wheel) as z:
        for p in presets:
            assert z.read(f"l1lite/configs/{p.name}").decode() == p.read_text()  # the same files, one copy


@pytest.mark.slow
def test_the_pipeline_runs_from_the_installed_wheel_alone(wheel, tmp_path):
    target = tmp_path / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    work = tmp_path / "work"  # outside the checkout: no configs/ folder and no l1lite/ source here
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "L1LITE_CACHE": str(tmp_path / "cache")}

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout
        )

    where = run("-c", "import l1lite.cli, l1lite.configs; print(l1lite.cli.__file__); print(l1lite.configs.__file__)")
    assert where.returncode == 0, where.stderr[-2000:]
    assert all(Path(line).is_relative_to(target) for line in where.stdout.split()), where.stdout

    listed = run("-m", "l1lite.cli", "presets")
    assert listed.returncode == 0 and "demo-cpu" in listed.stdout and "l1-exact" in listed.stdout, listed.stderr

    # the demo's own test runs it in full; here its stages from the wheel: a preset, the tiny model built into the
    # cache, the shipped problems, training, export to GGUF
    train = run(
        "-m", "l1lite.cli", "train", "--config", "demo-cpu", "--set", "output_dir=out", "--no-progress", timeout=600
    )
    assert train.returncode == 0, train.stderr[-3000:]
    out = work / "out"
    assert json.loads((out / "summary.json").read_text())["global_step"] == 4  # the demo-cpu preset
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    export = run(
        "-m",
        "l1lite.cli",
        "export",
        "--base",
        "l1lite:tiny",
        "--adapter",
        "out/adapter",
        "--out",
        "gguf",
        "--quant",
        "f16",
        "--no-progress",
        timeout=600,
    )
    assert export.returncode == 0, export.stderr[-3000:]
    assert (work / "gguf" / "Modelfile").is_file() and list((work / "gguf").glob("*-f16.gguf"))
