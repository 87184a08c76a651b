"""Both notebooks run top to bottom headlessly in their offline CPU smoke configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import metadata
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stripped_and_parameterised():
    assert {p.name for p in NOTEBOOKS} == {"l1lite_colab.ipynb", "l1lite_kaggle.ipynb"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name
        assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1, path.name
        assert '"l1lite.cli"' in "".join(c.source for c in code)  # each stage is an l1lite command


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_install_asks_for_the_release_and_names_a_spec_pip_cannot_install(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    params = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    install = next(c.source for c in nb.cells if c.cell_type == "code" and '"pip", "install"' in c.source)
    assert 'L1LITE_SPEC = "l1lite[unsloth,vllm,llama]"' in params and "INSTALL = True" in params
    assert {"unsloth", "vllm", "llama"} <= set(metadata("l1lite").get_all("Provides-Extra"))  # the spec's extras
    missing = 'L1LITE_SPEC = "l1lite-no-such-package-x7q"'
    proc = subprocess.run(
        [sys.executable, "-c", f"{params}\n{missing}\n{install}"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        "pip could not install 'l1lite-no-such-package-x7q': set L1LITE_SPEC to l1lite's git URL or a wheel"
    )
    if "colab" in path.stem:  # runs on Google Drive, so a disconnected session resumes
        assert 'OUT_DIR = "/content/drive/MyDrive/l1lite/' in params and 'drive.mount("/content/drive")' in install
    else:  # Kaggle's "GPU T4 x2": one GPU trains
        assert 'os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")' in install


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_smoke_run(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    smoke = f"SMOKE = True\nINSTALL = False\nOUT_DIR = {json.dumps(str(tmp_path / 'runs'))}"
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(smoke, metadata={"tags": ["injected-parameters"]}))
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    runs = tmp_path / "runs"
    for made in ("l1-exact/adapter/adapter_config.json", "l1-max/adapter/adapter_config.json", "export/Modelfile"):
        assert (runs / made).is_file(), made
    for folder in ("eval-trained", "eval-base"):  # the trained dial (prompt, forcing) and the base under s1 forcing
        assert json.loads((runs / folder / "summary.json").read_text())["rows"]
    assert "eval-trained" in (runs / "eval-compare" / "report.md").read_text()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "budget 16:" in printed and "budget 32:" in printed
    assert "train: 100%|" in printed  # the stages' bars reach the notebook: its commands run on a pseudo-terminal


@pytest.mark.slow
@pytest.mark.vllm
def test_the_notebooks_install_spec_resolves_beside_an_installed_torch(vllm_ready, tmp_path):
    """``pip install --dry-run`` of the built wheel with the notebooks' extras where torch is already installed (the
    vLLM environment: a Colab-like CPU torch of the lock's version), as the install cell runs it on a fresh VM."""
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", tmp_path, ROOT], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("l1lite-*.whl")
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [*pip, "install", "-q", "--dry-run", "--report", report, f"{wheel}[unsloth,vllm,llama]"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    planned = {
        i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    assert {"l1lite", "unsloth", "vllm", "llama-cpp-python"} <= planned.keys()
    for name, cap in (("trl", (1, 15)), ("transformers", (5, 17))):  # what Unsloth 2026.10 allows, where replaced
        if name in planned:
            assert tuple(int(x) for x in planned[name].split(".")[:2]) <= cap, (name, planned[name])
