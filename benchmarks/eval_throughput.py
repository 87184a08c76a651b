"""Throughput of ``l1lite eval``'s generation: one sample at a time against batched / concurrent.

    PYTHONPATH=. python benchmarks/eval_throughput.py                   # random-init 512 x 8 model, built here
    PYTHONPATH=. python benchmarks/eval_throughput.py --prompts 32 --batch-size 16 --threads 4
    PYTHONPATH=. python benchmarks/eval_throughput.py --arms endpoint --prompts 16 --max-tokens 32

Two arms (``--arms``, comma-separated), on the same model and questions of the shipped set:

- ``batch`` (transformers, in-process, with the ``prompt`` strategy's budget sentence): ``sequential`` calls
  ``generate`` once per sample (``--batch-size 1``), ``batched`` calls ``generate_batch`` on ``--batch-size`` of
  them at a time. EOS is banned, so every sample generates exactly ``--max-tokens`` ids and both do the same
  work. Times are of the calls (rendering and re-tokenization included).
- ``endpoint`` (``l1lite eval --endpoint``, the ``prompt`` strategy, budget ``min(--budget, --max-tokens)``):
  ``sequential`` is ``--concurrency 1`` against one server, ``concurrent`` is ``--concurrency C`` against C
  servers. llama-cpp-python's server answers one request at a time, so the concurrent arm starts C of its
  processes (``--threads`` threads each; the sequential arm uses the first); where a ``llama-server`` binary is
  on PATH, one ``llama-server --parallel C`` serves both arms instead. Rates are the ones ``summary.json``
  records (samples and generated tokens per wall second of generation); rows must come out the same in both.

Each arm runs one warm-up of each variant; ``--repeats`` runs alternate between the variants and the medians
are reported.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib import resources
from pathlib import Path

from l1lite.core.config import EvalConfig, from_dict
from l1lite.core.tiny import build_tiny_model
from l1lite.eval.engine import evaluate
from l1lite.eval.results import RESULTS, read_results, row_key
from l1lite.export.gguf import export_gguf
from l1lite.inference import Budget, GenerationResult, Sampling, TransformersBackend, generate, generate_batch

ARMS = ("batch", "endpoint")


def timed(variants: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median seconds of each variant (``fn()`` returns its seconds) over alternating repeats, after a warm-up."""
    for fn in variants.values():
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):  # alternating, so load changes hit every variant alike
        for name, fn in variants.items():
            seconds[name].append(fn())
    return {name: statistics.median(values) for name, values in seconds.items()}


def table(title: str, seconds: dict[str, float], samples: int, tokens: dict[str, float]) -> None:
    """Seconds, samples/s, tokens/s and the ratio to the first variant."""
    print(title)
    print(f"  {'variant':16s} {'seconds':>8s} {'samples/s':>10s} {'tokens/s':>9s} {'ratio':>6s}")
    base = next(iter(seconds.values()))
    for name, med in seconds.items():
        print(f"  {name:16s} {med:8.2f} {samples / med:10.2f} {tokens[name] / med:9.1f} {base / med:5.2f}x")


def batch_arm(args: argparse.Namespace, folder: Path, questions: list[str]) -> None:
    """Transformers: ``generate`` one by one against ``generate_batch``."""
    backend = TransformersBackend(str(folder))
    ban_eos = {backend.tokenizer.eos_token_id: -100.0}
    budget = Budget(args.budget, max_tokens=args.max_tokens)

    def sampling(seed: int) -> Sampling:
        return Sampling(temperature=0.6, top_p=0.95, seed=seed, logit_bias=ban_eos)

    def check(start: float, results: list[GenerationResult]) -> float:
        assert len(results) == len(questions) and all(r.finish_reason == "length" for r in results)
        return time.perf_counter() - start

    def sequential() -> float:
        start = time.perf_counter()
        return check(start, [generate(backend, q, budget, sampling(i)) for i, q in enumerate(questions)])

    def batched() -> float:
        start, size = time.perf_counter(), args.batch_size
        chunks = [questions[i : i + size] for i in range(0, len(questions), size)]
        return check(start, [r for n, c in enumerate(chunks) for r in generate_batch(backend, c, budget, sampling(n))])

    params = sum(p.numel() for p in backend.model.parameters())
    seconds = timed({"sequential": sequential, f"batched ({args.batch_size})": batched}, args.repeats)
    backend.close()
    tokens = len(questions) * args.max_tokens  # EOS banned: every sample generated max_tokens ids
    title = f"batch arm (transformers, {params / 1e6:.1f}M params, {args.threads} torch thread(s))"
    table(title, seconds, len(questions), dict.fromkeys(seconds, tokens))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(cmd: list[str], url: str, log: Path) -> Iterator[str]:
    """Run a server ``cmd`` until the context ends; ``url`` once its ``/v1/models`` answers."""
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{cmd[0]} did not start: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def servers(gguf: Path, count: int, threads: int, logs: Path, stack: ExitStack) -> tuple[list[str], str]:
    """The server URLs for ``count`` requests at once, and what they are."""
    binary = shutil.which("llama-server")
    if binary:
        port = _free_port()
        cmd = [binary, "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "--parallel", str(count)]
        cmd += ["--threads", str(threads), "--ctx-size", str(2048 * count)]
        url = stack.enter_context(served(cmd, f"http://127.0.0.1:{port}", logs / "llama-server.log"))
        return [url], f"one llama-server --parallel {count}, {threads} thread(s)"
    urls = []
    for i in range(count):
        port = _free_port()
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads)]
        urls.append(stack.enter_context(served(cmd, f"http://127.0.0.1:{port}", logs / f"server{i}.log")))
    return urls, f"{count} llama-cpp-python server processes, {threads} thread(s) each"


def endpoint_arm(args: argparse.Namespace, folder: Path, work: Path) -> None:
    """``l1lite eval --endpoint``: ``--concurrency 1`` on one server against ``--concurrency C`` on C of them."""
    gguf = export_gguf(folder, work / "model.gguf")
    rows: dict[str, list[dict]] = {}
    tokens: dict[str, float] = {}

    def run(name: str, urls: list[str], concurrency: int) -> Callable[[], float]:
        def once() -> float:
            out = work / f"eval-{concurrency}"
            cfg = from_dict(
                EvalConfig,
                {
                    "out": str(out),
                    "endpoint": ",".join(urls),
                    "tokenizer": str(gguf),
                    "data": {"limit": args.prompts},
                    "strategies": ["prompt"],
                    "budgets": [min(args.budget, args.max_tokens)],
                    "max_tokens": args.max_tokens,
                    "concurrency": concurrency,
                    "progress": False,
                },
            )
            throughput = evaluate(cfg, force=True)["throughput"]
            timeless = [{k: v for k, v in r.items() if k != "seconds"} for r in read_results(out / RESULTS)]
            rows[name] = sorted(timeless, key=row_key)
            tokens[name] = throughput["tokens"]
            return throughput["seconds"]

        return once

    with ExitStack() as stack:
        urls, what = servers(gguf, args.concurrency, args.threads, work, stack)
        concurrent = f"concurrent ({args.concurrency})"
        variants = {"sequential": run("sequential", urls[:1], 1), concurrent: run(concurrent, urls, args.concurrency)}
        seconds = timed(variants, args.repeats)
    same = rows["sequential"] == rows[concurrent]
    table(f"endpoint arm ({what}; rows identical: {same})", seconds, args.prompts, tokens)
    assert same, "concurrent rows differ from sequential ones"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default="batch", help=f"comma-separated subset of {','.join(ARMS)} (default batch)")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=1408)
    parser.add_argument("--prompts", type=int, default=16, help="samples per variant and repeat")
    parser.add_argument("--max-tokens", type=int, default=64, help="new tokens per sample")
    parser.add_argument("--batch-size", type=int, default=8, help="batch arm: samples per batched call")
    parser.add_argument("--concurrency", type=int, default=4, help="endpoint arm: samples in flight (and servers)")
    parser.add_argument("--budget", type=int, default=512, help="the budget sentence's N")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch / server threads (default 1: steady when busy)")
    args = parser.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not arms or set(arms) - set(ARMS):
        parser.error(f"--arms must name some of {', '.join(ARMS)}, got {args.arms!r}")

    import torch

    torch.set_num_threads(args.threads)
    lines = resources.files("l1lite.assets").joinpath("math_small.jsonl").read_text().splitlines()
    questions = [json.loads(line)["problem"] for line in lines[: args.prompts]]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_model(
            Path(tmp) / "hf",
            hidden_size=args.hidden,
            num_layers=args.layers,
            num_heads=args.heads,
            num_kv_heads=args.kv_heads,
            intermediate_size=args.intermediate,
        )
        print(
            f"model random-init hidden={args.hidden} layers={args.layers} intermediate={args.intermediate}; "
            f"{len(questions)} prompts x up to {args.max_tokens} new tokens per variant, {args.repeats} alternating "
            "repeats (medians)"
        )
        if "batch" in arms:
            batch_arm(args, folder, questions)
        if "endpoint" in arms:
            endpoint_arm(args, folder, Path(tmp))
    print(f"  wall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
