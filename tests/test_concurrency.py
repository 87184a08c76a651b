"""``l1lite eval --endpoint URL --concurrency N`` against real llama-cpp-python servers of the tiny GGUF.

Rows must not depend on the concurrency nor on which server answered (per-sample seeds), a SIGKILLed
concurrent run must resume to the same summary with every key once, several ``--endpoint``s must all get
work (counted in the servers' access logs), and bad ``--concurrency`` values are one line, exit 2.
A fake local server checks the client's side of streaming: no stream without a listener, and a stream cut off
without a ``finish_reason`` is an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from l1lite.cli import main
from l1lite.core.config import ConfigError
from l1lite.eval.results import RESULTS, SUMMARY, plan, read_results, row_key
from l1lite.inference import Budget, OpenAIBackend, Sampling, generate
from l1lite.inference.base import load_vocab

pytest.importorskip("llama_cpp")

ROOT = Path(__file__).resolve().parents[1]
IDS = ["ms-000", "ms-001", "ms-002"]
KEYS = plan(IDS, [16, 32], ["prompt", "forcing", "none"], "exact", 2)
POSTS = '"POST /v1/completions HTTP/1.1" 200'


def eval_argv(gguf: Path, out: Path, endpoints: list[str], *extra: str) -> list[str]:
    argv = ["eval", "--tokenizer", str(gguf), "--limit", "3", "--budgets", "16,32", "--samples", "2"]
    argv += ["--max-tokens", "64", "--seed", "5", "--out", str(out), "--no-progress", *extra]
    return argv + [arg for url in endpoints for arg in ("--endpoint", url)]


def rows_by_key(out: Path) -> dict:
    """results.jsonl as key -> row without its timing; every planned key exactly once."""
    rows = read_results(out / RESULTS)
    assert sorted(map(row_key, rows), key=KEYS.index) == KEYS  # no key missing, none repeated
    return {row_key(r): {k: v for k, v in r.items() if k != "seconds"} for r in rows}


@pytest.fixture(scope="module")
def servers(tiny_gguf, llama_server, tmp_path_factory):
    """Two llama-cpp-python servers of the tiny GGUF: [(url, access log)]."""
    logs = [tmp_path_factory.mktemp("servers") / f"server{i}.log" for i in range(2)]
    with llama_server(tiny_gguf, logs[0]) as first, llama_server(tiny_gguf, logs[1]) as second:
        yield [(first, logs[0]), (second, logs[1])]


@pytest.fixture(scope="module")
def sequential(servers, tiny_gguf, tmp_path_factory) -> Path:
    """One sample at a time on the first server."""
    out = tmp_path_factory.mktemp("sequential") / "run"
    assert main(eval_argv(tiny_gguf, out, [servers[0][0]])) == 0
    return out


@pytest.fixture(scope="module")
def spread(servers, tiny_gguf, tmp_path_factory) -> tuple[Path, list[int]]:
    """``--concurrency 4`` over both servers: the folder, and the completions each server answered for it."""
    out = tmp_path_factory.mktemp("spread") / "run"
    before = [log.read_text().count(POSTS) for _, log in servers]
    assert main(eval_argv(tiny_gguf, out, [url for url, _ in servers], "--concurrency", "4")) == 0
    return out, [log.read_text().count(POSTS) - n for (_, log), n in zip(servers, before, strict=True)]


@pytest.mark.slow
def test_concurrency_gives_the_rows_of_a_sequential_run(servers, tiny_gguf, sequential, spread, tmp_path, eval_summary):
    out = tmp_path / "four"
    assert main(eval_argv(tiny_gguf, out, [servers[0][0]], "--concurrency", "4")) == 0
    expected = rows_by_key(sequential)
    assert rows_by_key(out) == expected  # same keys, seeds, texts and token counts
    assert rows_by_key(spread[0]) == expected  # and so over two servers
    assert len({r["text"] for r in expected.values()}) > len(expected) // 2  # sampled texts differ between keys
    assert eval_summary(out) == eval_summary(sequential)
    throughput = json.loads((out / SUMMARY).read_text())["throughput"]
    assert throughput["concurrency"] == 4 and throughput["samples"] == len(KEYS)
    assert throughput["tokens"] == sum(r["tokens"] for r in expected.values())


@pytest.mark.slow
def test_every_endpoint_gets_requests(spread):
    _, answered = spread
    assert all(n > 0 for n in answered), answered
    assert sum(answered) >= len(KEYS)  # at least one completion per sample


@pytest.mark.slow
def test_killed_concurrent_eval_resumes_to_the_same_summary(
    servers, tiny_gguf, spread, tmp_path, eval_summary, interrupted_eval
):
    cut = tmp_path / "cut"
    argv = eval_argv(tiny_gguf, cut, [url for url, _ in servers], "--concurrency", "4")
    assert 8 <= interrupted_eval(argv, cut) < len(KEYS)
    assert main(argv) == 0
    assert rows_by_key(cut) == rows_by_key(spread[0])  # each key once: none repeated, none missing
    assert eval_summary(cut) == eval_summary(spread[0])
    assert (cut / "plots.json").read_text() == (spread[0] / "plots.json").read_text()
    resumed = json.loads((cut / SUMMARY).read_text())["throughput"]
    assert resumed["samples"] == len(KEYS) - 7


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--concurrency", "0"], "eval.concurrency must be >= 1, got 0"),
        (["--concurrency", "-3"], "eval.concurrency must be >= 1, got -3"),
        (["--concurrency", "two"], "argument --concurrency: invalid int value: 'two'"),
        (["--concurrency", "1.5"], "argument --concurrency: invalid int value: '1.5'"),
        (["--set", "concurrency=0"], "eval.concurrency must be >= 1, got 0"),
        (["--model", "m.gguf", "--concurrency", "4"], "eval.concurrency 4 needs an --endpoint"),
    ],
)
def test_bad_concurrency_is_one_line(flags, message, tmp_path):
    source = [] if "--model" in flags else ["--endpoint", "http://127.0.0.1:9", "--tokenizer", "t.gguf"]
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "l1lite.cli", "eval", *source, *flags, "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("l1lite eval: error: ") and message in line, line
    assert not out.exists()  # refused before anything is written


class _Recorder(BaseHTTPRequestHandler):
    """A completions server that records whether each request streams; its streams end without a finish_reason,
    as llama-cpp-python's server ends a stream it interrupts for another request."""

    streamed: list[bool] = []

    def log_message(self, *args) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._send("application/json", json.dumps({"object": "list", "data": [{"id": "recorder"}]}))

    def do_POST(self) -> None:
        stream = bool(json.loads(self.rfile.read(int(self.headers["Content-Length"]))).get("stream"))
        self.streamed.append(stream)
        if stream:
            chunk = json.dumps({"choices": [{"index": 0, "text": "ab", "finish_reason": None}]})
            self._send("text/event-stream", f"data: {chunk}\n\ndata: [DONE]\n\n")
        else:
            self._send("application/json", json.dumps({"choices": [{"text": "ab", "finish_reason": "stop"}]}))

    def _send(self, kind: str, body: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.end_headers()
        self.wfile.write(body.encode())


def test_forcing_streams_only_to_a_listener_and_a_cut_stream_is_an_error(tiny_gguf):
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    backend = OpenAIBackend(f"http://127.0.0.1:{recorder.server_address[1]}", load_vocab(str(tiny_gguf)))
    forcing = Budget(16, "exact", "forcing", min_tokens=16, wait=2, max_tokens=32)
    try:
        res = generate(backend, "What is 2 + 3?", forcing, Sampling(seed=0))
        assert res.waits == 2 and Counter(_Recorder.streamed) == {False: 4}  # 3 thinking phases + the answer
        with pytest.raises(ConfigError, match="ended without a finish_reason"):
            generate(backend, "What is 2 + 3?", forcing, Sampling(seed=0), on_text=lambda text: None)
        assert _Recorder.streamed[4:] == [True]
    finally:
        backend.close()
        recorder.shutdown()
        recorder.server_close()
