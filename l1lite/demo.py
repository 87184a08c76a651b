"""``l1lite demo``: the whole pipeline on the offline tiny model, on CPU, in a few minutes.

Owns only the order of the steps and the printout; each step is a stage's public function (tiny, train,
export, inference) and the training config is the shipped preset ``demo-cpu``. No module imports it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from l1lite.config import ConfigError, TrainConfig, load_config

DEMO_CONFIG = "demo-cpu"  # the shipped preset (l1lite presets)
QUESTION = "What is $12 + 7 \\times 3$?"
BUDGET = 32


def run_demo(out: str | Path, config: str | Path = DEMO_CONFIG, overrides: list[str] | None = None) -> dict:
    """Tiny model -> GRPO with LoRA + LCPO -> merge + GGUF -> budget-prompted generation in llama.cpp."""
    from l1lite.export import export
    from l1lite.inference import Budget, Sampling, generate, load_backend
    from l1lite.prompts import user_message
    from l1lite.tiny import build_tiny_model
    from l1lite.train import train

    out = Path(out)
    if (out / "train").exists():
        raise ConfigError(f"{out} holds an earlier demo: choose another --out or remove it")
    timings = {}
    t = time.time()
    tiny = build_tiny_model(out / "tiny-model")
    timings["tiny_model"] = time.time() - t

    t = time.time()
    cfg = load_config(TrainConfig, config, [f"model.name={tiny}", f"output_dir={out / 'train'}", *(overrides or [])])
    summary = train(cfg)
    timings["train"] = time.time() - t

    t = time.time()
    exported = export(
        base=str(tiny), adapter=summary["adapter"], out=out / "export", quant=("f16", "q8_0"), name="l1lite-demo"
    )
    timings["export"] = time.time() - t

    t = time.time()
    gguf = exported["gguf"]["f16"]
    backend = load_backend(str(gguf))
    result = generate(backend, QUESTION, Budget(BUDGET, "exact", "cap", max_tokens=64), Sampling(seed=0))
    timings["generate"] = time.time() - t
    prompt = user_message(QUESTION, BUDGET, "exact", cfg.prompt)
    record = {"prompt": prompt, "gguf": str(gguf), "result": result.to_dict()}
    (out / "demo.json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
    return {"tiny": tiny, "train": summary, "export": exported, "prompt": prompt, "result": result, "timings": timings}


def add_arguments(parser) -> None:
    """CLI: ``l1lite demo [--out DIR]``."""
    parser.add_argument("--out", default="runs/demo", help="folder for every artefact (default runs/demo)")
    parser.add_argument(
        "--config", default=DEMO_CONFIG, help="training config: a YAML path or a preset name (default demo-cpu)"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def run(args) -> int:
    """CLI entry point."""
    r = run_demo(args.out, args.config, args.overrides)
    res, tr = r["result"], r["train"]
    print("\n== l1lite demo ==")
    print(f"tiny model      : {r['tiny']}")
    print(f"training        : {tr['global_step']} GRPO steps on backend '{tr['backend']}', loss {tr['train_loss']:.4f}")
    print(f"adapter         : {tr['adapter']}")
    print(f"merged model    : {r['export']['merged']}")
    for qtype, path in r["export"]["gguf"].items():
        print(f"gguf {qtype:<10} : {path}")
    print(f"modelfile       : {r['export']['modelfile']}")
    print("timings (s)     : " + ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items()))
    print(f"\nllama.cpp (enforce=cap), user prompt: {r['prompt']}")
    print(f"thinking tokens {res.thinking_tokens}, answer tokens {res.answer_tokens}, finish {res.finish_reason}")
    if tr["last_metrics"].get("completions/clipped_ratio", 0) == 1:
        print("(the random tiny model never ends its thinking, so every rollout clips and rewards tie: this demo")
        print(" shows the plumbing; `l1lite bench dial` measures whether LCPO teaches a model to follow budgets)")
    print("generated text:")
    print(res.text)
    return 0
