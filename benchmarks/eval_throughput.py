"""Throughput of ``l1lite eval``'s transformers generation: one sample at a time against batched.

    PYTHONPATH=. python benchmarks/eval_throughput.py                   # random-init 512 x 8 model, built here
    PYTHONPATH=. python benchmarks/eval_throughput.py --prompts 32 --batch-size 16 --threads 4

Both variants answer the same ``--prompts`` questions of the shipped set with the ``prompt`` strategy's
budget sentence: ``sequential`` calls ``generate`` once per sample (``--batch-size 1``), ``batched`` calls
``generate_batch`` on ``--batch-size`` of them at a time. EOS is banned, so every sample generates exactly
``--max-tokens`` ids and both do the same work. Times are of the calls (rendering and re-tokenization
included), after one warm-up of each; ``--repeats`` runs alternate between the variants and the medians
are reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

from l1lite.inference import Budget, GenerationResult, Sampling, TransformersBackend, generate, generate_batch
from l1lite.tiny import build_tiny_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=1408)
    parser.add_argument("--prompts", type=int, default=16, help="samples per variant and repeat")
    parser.add_argument("--max-tokens", type=int, default=64, help="new tokens per sample")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--budget", type=int, default=512, help="the budget sentence's N")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steady on a busy machine)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    lines = resources.files("l1lite.assets").joinpath("math_small.jsonl").read_text().splitlines()
    questions = [json.loads(line)["problem"] for line in lines[: args.prompts]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_model(
            Path(tmp) / "hf",
            hidden_size=args.hidden,
            num_layers=args.layers,
            num_heads=args.heads,
            num_kv_heads=args.kv_heads,
            intermediate_size=args.intermediate,
        )
        backend = TransformersBackend(str(folder))
        params = sum(p.numel() for p in backend.model.parameters())
        ban_eos = {backend.tokenizer.eos_token_id: -100.0}
        budget = Budget(args.budget, max_tokens=args.max_tokens)

        def sampling(seed: int) -> Sampling:
            return Sampling(temperature=0.6, top_p=0.95, seed=seed, logit_bias=ban_eos)

        def sequential(qs: list[str]) -> list[GenerationResult]:
            return [generate(backend, q, budget, sampling(i)) for i, q in enumerate(qs)]

        def batched(qs: list[str]) -> list[GenerationResult]:
            size = args.batch_size
            chunks = [qs[i : i + size] for i in range(0, len(qs), size)]
            return [r for n, chunk in enumerate(chunks) for r in generate_batch(backend, chunk, budget, sampling(n))]

        runs = {"sequential": sequential, f"batched ({args.batch_size})": batched}
        for fn in runs.values():  # warm-up
            fn(questions[: args.batch_size])
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        start_all = time.perf_counter()
        for _ in range(args.repeats):  # alternating, so load changes hit both alike
            for name, fn in runs.items():
                start = time.perf_counter()
                results = fn(questions)
                seconds[name].append(time.perf_counter() - start)
                assert len(results) == len(questions) and all(r.finish_reason == "length" for r in results)
        wall = time.perf_counter() - start_all
        backend.close()

    tokens = len(questions) * args.max_tokens  # EOS banned: every sample generated max_tokens ids
    print(
        f"model random-init hidden={args.hidden} layers={args.layers} intermediate={args.intermediate} "
        f"({params / 1e6:.1f}M params), {args.threads} torch thread(s); {len(questions)} prompts x "
        f"{args.max_tokens} new tokens per variant, {args.repeats} alternating repeats (medians)"
    )
    print(f"  {'variant':14s} {'seconds':>8s} {'samples/s':>10s} {'tokens/s':>9s} {'ratio':>6s}")
    base = statistics.median(seconds["sequential"])
    for name, values in seconds.items():
        med = statistics.median(values)
        print(f"  {name:14s} {med:8.2f} {len(questions) / med:10.2f} {tokens / med:9.1f} {base / med:5.2f}x")
    print(f"  wall time of the timed runs: {wall:.1f} s")


if __name__ == "__main__":
    main()
