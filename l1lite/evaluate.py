"""``l1lite eval``: accuracy and generated length against a thinking budget, resumable, with a report and plots.

Strategies; every sample is keyed by (problem id, strategy, budget, mode, sample index):

- ``prompt``: the budget sentence in the prompt (``Think for N tokens.``, mode max: ``Think for maximum N
  tokens.``) and nothing enforced while decoding: the behaviour LCPO trains.
- ``forcing``: the s1 baseline (budget forcing). No budget sentence; the decoder enforces the budget on the
  thinking: mode exact: at least and at most N thinking tokens (``min_tokens=N``, "Wait" insertions when it
  stops early, ``</think>`` forced at N); mode max: at most N (only the cap).
- ``none``: no budget at all, the base behaviour. Generated once per problem and sample (``budget`` is null
  in results.jsonl) and reported against every budget: the same accuracy and lengths in each row, the
  length error and over-budget share measured against that row's budget (a flat reference line; dial spread 1).

Lengths are counted with the model's tokenizer: ``tokens`` is every generated token (the paper's n_y),
``thinking_tokens`` only those before ``</think>`` (what llama.cpp and vLLM budgets count); both are reported.

Owns the eval run: its config check, the per-sample seeds, the metrics and ``summary.json``. The folder's
files are :mod:`l1lite.results`', the report :mod:`l1lite.report`'s, generation :mod:`l1lite.inference`'s.
Must not import training or export.

``batch_size`` N > 1 (backends that declare ``batched``: transformers) cuts the plan's ``prompt`` and ``none``
keys of each (strategy, budget, mode) into batches of up to N, each generated in one call seeded by its first
key's sample seed (the row's ``seed``; ``seconds`` is the batch's time shared out): a row depends on the batch
size, and is the same whether or not the run was interrupted. ``forcing`` stays one sample at a time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import statistics
import time
from collections import defaultdict
from dataclasses import replace
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

from l1lite.config import ConfigError, EvalConfig, PromptConfig, build_config, from_dict, load_yaml, to_dict
from l1lite.files import atomic_path
from l1lite.results import CONFIG, RESULTS, SUMMARY, Key, plan, read_results, row_key, select

if TYPE_CHECKING:
    from l1lite.inference import Budget, GenerationResult, Sampling

STRATEGIES = ("prompt", "forcing", "none")
MODES = ("exact", "max")
# settings that may change between an interrupted run and its resume (they only add or select samples)
RESUMABLE = ("out", "budgets", "strategies", "samples", "data.limit")

log = logging.getLogger(__name__)


def check_config(cfg: EvalConfig) -> None:
    """Raise :class:`ConfigError` for settings no run could use."""
    if not cfg.model and not cfg.endpoint:
        raise ConfigError("eval needs a model (--model FILE.gguf or HF folder) or an --endpoint URL")
    if cfg.endpoint and not cfg.tokenizer:
        raise ConfigError("eval counts tokens locally: give --tokenizer (HF folder or .gguf) with --endpoint")
    if not cfg.budgets or any(b <= 0 for b in cfg.budgets) or len(set(cfg.budgets)) != len(cfg.budgets):
        raise ConfigError(f"eval.budgets must be distinct positive integers, got {cfg.budgets}")
    bad = [s for s in cfg.strategies if s not in STRATEGIES]
    if bad or not cfg.strategies or len(set(cfg.strategies)) != len(cfg.strategies):
        raise ConfigError(f"eval.strategies must be distinct names from {', '.join(STRATEGIES)}, got {cfg.strategies}")
    if cfg.mode not in MODES:
        raise ConfigError(f"eval.mode must be one of {', '.join(MODES)}, got {cfg.mode!r}")
    for name in ("samples", "max_tokens", "n_ctx", "batch_size"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"eval.{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.temperature < 0 or not 0 < cfg.top_p <= 1:
        raise ConfigError(f"eval needs temperature >= 0 and 0 < top_p <= 1, got {cfg.temperature}, {cfg.top_p}")
    from l1lite.inference import Budget, check_room

    room = f"eval.max_tokens {cfg.max_tokens}"
    for budget in sorted(cfg.budgets):  # an exact budget beyond max_tokens: refused; a max one: warned about
        check_room(Budget(budget, cfg.mode, max_tokens=cfg.max_tokens), cfg.max_tokens, room)
    from l1lite.grading import check_grader

    check_grader(grader_of(cfg))


def grader_of(cfg: EvalConfig) -> str:
    """The grader: ``cfg.grader``, else ``choice`` for the multiple-choice preset, else ``math``."""
    return cfg.grader or ("choice" if cfg.data.preset == "choice" else "math")


def sample_seed(seed: int, key: Key) -> int:
    """Per-sample sampling seed, a pure function of the run seed and the sample's key (stable across resumes)."""
    digest = hashlib.sha256(json.dumps([seed, *key]).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _metrics(rows: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    by_problem: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        by_problem[r["id"]].append(bool(r["verdict"]))
    out: dict[str, Any] = {
        "samples": len(rows),
        "problems": len(by_problem),
        "accuracy": _mean([_mean(v) for v in by_problem.values()]),  # mean pass@1
    }
    for suffix, field in (("", "tokens"), ("_thinking", "thinking_tokens")):
        n = [r[field] for r in rows]
        out[f"mean{suffix}_tokens"] = _mean(n)
        out[f"median{suffix}_tokens"] = float(statistics.median(n))
        out[f"rel_error{suffix}"] = _mean([abs(x - budget) / budget for x in n])
        out[f"over_budget{suffix}"] = _mean([x > budget for x in n])
    out["truncated"] = _mean([r["finish_reason"] == "length" for r in rows])
    return out


def summarize(rows: list[dict[str, Any]], budgets: list[int], strategies: list[str]) -> dict[str, Any]:
    """Per strategy and budget metrics, and each strategy's dial spread, from result rows.

    ``rows`` must already be the run's selection (see :func:`select`). ``none`` rows (budget None) are
    reported against every budget. Dial spread = mean length at the largest budget / at the smallest.
    """
    groups: dict[tuple[str, int | None], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["strategy"], r["budget"]].append(r)
    table = []
    for strategy in strategies:
        for budget in sorted(budgets):
            group = groups.get((strategy, None if strategy == "none" else budget))
            if group:
                table.append({"strategy": strategy, "budget": budget, **_metrics(group, budget)})
    spread: dict[str, dict[str, float | None]] = {}
    lo, hi = min(budgets), max(budgets)
    for strategy in strategies:
        at = {r["budget"]: r for r in table if r["strategy"] == strategy}
        if lo != hi and lo in at and hi in at:
            spread[strategy] = {
                name: (at[hi][field] / at[lo][field] if at[lo][field] else None)
                for name, field in (("total", "mean_tokens"), ("thinking", "mean_thinking_tokens"))
            }
    return {"rows": table, "dial_spread": spread}


def _identity(cfg: EvalConfig) -> dict[str, Any]:
    flat = {}
    for section, value in to_dict(cfg).items():
        if isinstance(value, dict):
            flat.update({f"{section}.{k}": v for k, v in value.items()})
        else:
            flat[section] = value
    return {k: v for k, v in flat.items() if k not in RESUMABLE}


def _prepare_out(cfg: EvalConfig, force: bool) -> Path:
    """Create the output folder; refuse to mix results of a different eval into it unless ``force``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / CONFIG
    if force:
        for name in (RESULTS, CONFIG):
            (out / name).unlink(missing_ok=True)
    elif saved.exists():
        old = _identity(from_dict(EvalConfig, json.loads(saved.read_text())))
        new = _identity(cfg)
        diff = [k for k in new if old.get(k) != new[k]]
        if diff:
            k = diff[0]
            raise ConfigError(
                f"{out} holds results of a different eval ({k}: {old.get(k)!r} there, {new[k]!r} now); "
                "use another --out or --force to start over"
            )
    elif (out / RESULTS).exists():
        raise ConfigError(f"{out / RESULTS} exists without {CONFIG}; use another --out or --force to start over")
    saved.write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
    return out


def _request(key: Key, cfg: EvalConfig) -> tuple[Budget, PromptConfig]:
    """The ``Budget`` and prompt templates of a key's strategy."""
    from l1lite.inference import Budget

    _, strategy, budget, mode, _ = key
    if strategy == "prompt":
        return Budget(budget, mode, max_tokens=cfg.max_tokens), cfg.prompt
    if strategy == "forcing":
        forcing = Budget(
            budget,
            mode,
            "forcing",
            min_tokens=budget if mode == "exact" else 0,
            wait=cfg.wait,
            max_tokens=cfg.max_tokens,
        )
        return forcing, replace(cfg.prompt, exact_template="", max_template="")  # no budget sentence
    return Budget(None, mode, max_tokens=cfg.max_tokens), cfg.prompt


def _sampling(cfg: EvalConfig, seed: int) -> Sampling:
    from l1lite.inference import Sampling

    return Sampling(temperature=cfg.temperature, top_p=cfg.top_p, seed=seed)


def _units(keys: list[Key], cfg: EvalConfig, size: int) -> list[tuple[list[Key], bool]]:
    """The plan cut into what is generated together: (keys, batched); batches of ``size`` where enforce is none."""
    units = []
    for _, run in groupby(keys, key=lambda k: k[1:4]):
        run = list(run)
        if size > 1 and _request(run[0], cfg)[0].enforce == "none":
            units += [(run[i : i + size], True) for i in range(0, len(run), size)]
        else:
            units += [([k], False) for k in run]
    return units


def _sample(backend, problem: dict[str, str], key: Key, cfg: EvalConfig) -> dict[str, Any]:
    """Generate and grade one sample: its results.jsonl row."""
    from l1lite.inference import generate

    seed = sample_seed(cfg.seed, key)
    budget, prompt_cfg = _request(key, cfg)
    start = time.perf_counter()
    res = generate(backend, problem["question"], budget, _sampling(cfg, seed), prompt_cfg=prompt_cfg)
    return _row(problem, key, seed, res, time.perf_counter() - start, cfg)


def _batch(backend, problems: list[dict[str, str]], keys: list[Key], cfg: EvalConfig) -> list[dict]:
    """Generate the samples of ``keys`` (one strategy, budget and mode) in one batched call: their rows."""
    from l1lite.inference import generate_batch

    seed = sample_seed(cfg.seed, keys[0])
    budget, prompt_cfg = _request(keys[0], cfg)
    start = time.perf_counter()
    questions = [p["question"] for p in problems]
    results = generate_batch(backend, questions, budget, _sampling(cfg, seed), prompt_cfg=prompt_cfg)
    share = (time.perf_counter() - start) / len(keys)
    return [_row(p, k, seed, res, share, cfg) for p, k, res in zip(problems, keys, results, strict=True)]


def _row(
    problem: dict[str, str], key: Key, seed: int, res: GenerationResult, seconds: float, cfg: EvalConfig
) -> dict[str, Any]:
    """The results.jsonl row of one graded sample."""
    from l1lite.rewards import is_correct

    return {
        "id": key[0],
        "strategy": key[1],
        "budget": key[2],
        "mode": key[3],
        "sample": key[4],
        "seed": seed,
        "gold": problem["answer"],
        "boxed": res.boxed,
        "verdict": is_correct(res.text, problem["answer"], grader_of(cfg), require_think_close=cfg.require_think_close),
        "tokens": res.total_tokens,
        "thinking_tokens": res.thinking_tokens,
        "answer_tokens": res.answer_tokens,
        "finish_reason": res.finish_reason,
        "waits": res.waits,
        "seconds": round(seconds, 4),
        "text": res.text,
    }


def evaluate(cfg: EvalConfig, force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) an eval into ``cfg.out`` and write summary.json, report.md and the plots.

    Samples already in results.jsonl are skipped; new ones are appended and flushed as each sample (or batch,
    see ``batch_size`` above) finishes. A batch with a sample left to do is generated whole; only the samples
    left are written. Returns the summary.
    """
    check_config(cfg)
    if cfg.model and cfg.model.endswith(".gguf") and not cfg.endpoint:
        from l1lite.models import check_gguf

        check_gguf(cfg.model)  # before anything is written to cfg.out
    from tqdm import tqdm

    from l1lite.data import check_available, load_problems
    from l1lite.report import write_report

    grader = grader_of(cfg)
    check_available(cfg.data)  # a hub id the hub cannot be asked about: one line now, not after retries
    problems = load_problems(cfg.data).to_list()
    ids = [p["id"] for p in problems]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"{cfg.data.dataset}: problem id {dup!r} is not unique; results are keyed by id")
    by_id = {p["id"]: p for p in problems}
    out = _prepare_out(cfg, force)
    keys = plan(ids, cfg.budgets, cfg.strategies, cfg.mode, cfg.samples)
    results = out / RESULTS
    done = {row_key(r) for r in read_results(results, repair=True)}
    pending = [k for k in keys if k not in done]
    if pending:
        from l1lite.inference import load_backend

        backend = load_backend(cfg.model, cfg.adapter, cfg.endpoint, cfg.tokenizer, n_ctx=cfg.n_ctx, seed=cfg.seed)
        size = cfg.batch_size if backend.batched else 1
        if size < cfg.batch_size:
            log.warning("%s generates one sample at a time: --batch-size ignored", type(backend).__name__)
        bar = tqdm(total=len(keys), initial=len(keys) - len(pending), unit="sample", desc="eval", disable=not progress)
        try:
            with results.open("a", encoding="utf-8") as f:
                for unit, batched in _units(keys, cfg, size):
                    if all(k in done for k in unit):
                        continue
                    if batched:
                        rows = _batch(backend, [by_id[k[0]] for k in unit], unit, cfg)
                    else:
                        rows = [_sample(backend, by_id[unit[0][0]], unit[0], cfg)]
                    new = [r for r in rows if row_key(r) not in done]
                    f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in new))
                    f.flush()
                    os.fsync(f.fileno())
                    bar.update(len(new))
        finally:
            bar.close()
            backend.close()
    rows = select(read_results(results), keys)
    summary = {"run": run_info(cfg, ids, grader), **summarize(rows, cfg.budgets, cfg.strategies)}
    with atomic_path(out / SUMMARY, force=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    write_report([(out.resolve().name, summary, rows)], out, force=True)
    return summary


def run_info(cfg: EvalConfig, ids: list[str], grader: str) -> dict[str, Any]:
    """The settings a report needs to describe a run (and to re-select its rows)."""
    return {
        "model": cfg.model,
        "adapter": cfg.adapter,
        "endpoint": cfg.endpoint,
        "dataset": cfg.data.dataset,
        "grader": grader,
        "mode": cfg.mode,
        "budgets": sorted(cfg.budgets),
        "strategies": list(cfg.strategies),
        "samples": cfg.samples,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "seed": cfg.seed,
        "max_tokens": cfg.max_tokens,
        "problems": len(ids),
        "ids": ids,
    }


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag} must be comma-separated integers, got {text!r}") from None


# command-line flag -> config key (flags override the config file; --set overrides both)
FLAGS = {
    "out": "out",
    "model": "model",
    "adapter": "adapter",
    "endpoint": "endpoint",
    "tokenizer": "tokenizer",
    "n_ctx": "n_ctx",
    "dataset": "data.dataset",
    "preset": "data.preset",
    "split": "data.split",
    "limit": "data.limit",
    "grader": "grader",
    "require_think_close": "require_think_close",
    "budgets": "budgets",
    "strategies": "strategies",
    "mode": "mode",
    "samples": "samples",
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "max_tokens": "max_tokens",
    "wait": "wait",
    "batch_size": "batch_size",
}


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """EvalConfig from ``--config FILE``, then the flags, then ``--set key=value`` overrides."""
    data = load_yaml(args.config)
    for flag, key in FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if flag == "budgets":
            value = _int_list(value, "--budgets")
        elif flag == "strategies":
            value = [s.strip() for s in value.split(",") if s.strip()]
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return build_config(EvalConfig, data, args.config, args.set or [])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite eval [--config FILE] [flags]`` and ``l1lite eval compare DIR... --out DIR``."""
    parser.add_argument("--config", help="YAML file with EvalConfig keys (flags override it)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    parser.add_argument("--model", help="GGUF file (llama.cpp) or HF model folder / hub id (transformers)")
    parser.add_argument("--adapter", help="PEFT LoRA adapter folder (HF models)")
    parser.add_argument("--endpoint", help="OpenAI-compatible server URL (llama.cpp server, Ollama /v1, vLLM)")
    parser.add_argument("--tokenizer", help="tokenizer used to count tokens (endpoints)")
    parser.add_argument("--n-ctx", type=int, help="context size (default 8192)")
    parser.add_argument("--dataset", help="l1lite:math-small (default), a local file, or a hub id")
    parser.add_argument("--preset", help="dataset preset (math500, aime, gsm8k, choice, ...)")
    parser.add_argument("--split", help="dataset split")
    parser.add_argument("--limit", type=int, help="only the first N problems")
    parser.add_argument("--grader", help="math | choice | exact | number | package.module:function")
    parser.add_argument(
        "--require-think-close",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="an answer counts only after </think> (default); --no-require-think-close grades the whole text",
    )
    parser.add_argument("--budgets", help="comma-separated thinking budgets (default 512,1024,2048,3600)")
    parser.add_argument("--strategies", help="comma-separated subset of prompt,forcing,none (default all)")
    parser.add_argument("--mode", help="budget mode: exact (default) or max")
    parser.add_argument("--samples", type=int, help="samples per problem (default 1; paper 16)")
    parser.add_argument("--temperature", type=float, help="default 0.6")
    parser.add_argument("--top-p", type=float, help="default 0.95")
    parser.add_argument("--seed", type=int, help="run seed; per-sample seeds derive from it (default 0)")
    parser.add_argument("--max-tokens", type=int, help="cap on generated tokens (default 7168)")
    parser.add_argument("--wait", type=int, help="forcing: most 'Wait' insertions (default 2)")
    parser.add_argument(
        "--batch-size",
        type=int,
        help="transformers: generate prompt/none samples N at a time in one batched call, seeded per batch, so "
        "rows depend on N (default 1: one by one)",
    )
    parser.add_argument("--out", help="output folder (default runs/eval); an existing one is resumed")
    parser.add_argument("--force", action="store_true", help="discard earlier results in --out and start over")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub = parser.add_subparsers(dest="eval_command", metavar="{compare}")
    cmp = sub.add_parser("compare", help="put eval runs side by side in one report and one set of plots")
    cmp.add_argument("runs", nargs="+", metavar="DIR", help="eval output folders")
    cmp.add_argument("--out", dest="compare_out", metavar="DIR", required=True, help="folder for the comparison report")
    cmp.add_argument("--force", dest="compare_force", action="store_true", help="overwrite --out")


def run(args: argparse.Namespace) -> int:
    """CLI entry point."""
    if getattr(args, "eval_command", None) == "compare":
        from l1lite.report import compare

        path = compare(args.runs, args.compare_out, force=args.compare_force)
        print(f"comparison written to {path}")
        return 0
    cfg = config_from_args(args)
    summary = evaluate(cfg, force=args.force, progress=not args.no_progress)
    for row in summary["rows"]:
        print(
            f"{row['strategy']:>8} budget {row['budget']:>5}: accuracy {row['accuracy']:.3f}, "
            f"mean tokens {row['mean_tokens']:.1f}, rel. error {row['rel_error']:.3f}"
        )
    print(f"report written to {Path(cfg.out) / 'report.md'}")
    return 0
