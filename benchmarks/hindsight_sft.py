"""Experiment (not yet a stage of ``l1lite train``): hindsight budgets as a supervised start on a real model.

SmolLM2-135M-Instruct (``l1lite:smollm2-135m``) answers ``--train`` of ``l1lite bench real``'s arithmetic
problems once per style suffix (no budget sentence; the styles only spread the lengths), sampled at T 1.0 up
to 128 tokens. Every answer that ends by itself (>= 8 tokens) is relabelled with its own token count as an
exact budget (``Think for N tokens.``) and the model is fine-tuned on these pairs with LoRA r16 / alpha 32 on
all linear layers (loss on the answer only). The base and the tuned model are evaluated on 32 held-out
problems x 2 samples at T 0.6 at budgets 16 / 64 and 24 / 96 (mean tokens, accuracy by l1lite's ``number`` grader,
spread = mean tokens at the larger budget / at the smaller).

    PYTHONPATH=. python benchmarks/hindsight_sft.py --epochs 2 --lr 5e-4
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from l1lite.bench.real import arithmetic_problems
from l1lite.config import PromptConfig
from l1lite.grading import is_correct
from l1lite.models import resolve_model
from l1lite.prompts import render

STYLES = ["", " Answer in a few words.", " Explain each step in detail."]
MAX_TOKENS = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=96, help="training problems (one sample per style each)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--styles", default=json.dumps(STYLES), help="JSON list of suffixes for sampling")
    parser.add_argument("--skip-base", action="store_true", help="do not evaluate the base model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="torch sampling and training seed, batch order")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of the answers")
    parser.add_argument("--correct-only", action="store_true", help="keep only answers the grader accepts")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    prompt_cfg = PromptConfig()
    folder = resolve_model("l1lite:smollm2-135m")
    tok = AutoTokenizer.from_pretrained(folder)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)

    @torch.no_grad()
    def sample(m, prompts: list[str], temperature: float) -> list[tuple[list[int], bool]]:
        """(ids up to and including EOS, whether it ended by itself) per prompt, 16 prompts a call."""
        out = []
        for i in range(0, len(prompts), 16):
            enc = tok(prompts[i : i + 16], return_tensors="pt", padding=True, add_special_tokens=False)
            gen = m.generate(
                **enc,
                max_new_tokens=MAX_TOKENS,
                do_sample=True,
                temperature=temperature,
                top_p=1.0,
                pad_token_id=tok.pad_token_id,
            )
            for row in gen[:, enc["input_ids"].shape[1] :].tolist():
                end = row.index(tok.eos_token_id) + 1 if tok.eos_token_id in row else len(row)
                out.append((row[:end], end < len(row) or row[-1] == tok.eos_token_id))
        return out

    def evaluate(m, rows: list[dict[str, str]], budgets: list[int], label: str) -> dict:
        m.eval()
        figures = {}
        for b in budgets:
            prompts = [render(tok, r["problem"], b, "exact", prompt_cfg) for r in rows for _ in range(2)]
            answers = [r["answer"] for r in rows for _ in range(2)]
            outs = sample(m, prompts, 0.6)
            right = 0
            for (ids, _), answer in zip(outs, answers, strict=True):
                text = tok.decode(ids, skip_special_tokens=True)
                right += is_correct(text, answer, "number", require_think_close=False)
            figures[b] = {
                "mean_tokens": round(statistics.mean(len(i) for i, _ in outs), 1),
                "accuracy": right / len(outs),
            }
        figures["spread"] = round(figures[budgets[-1]]["mean_tokens"] / figures[budgets[0]]["mean_tokens"], 2)
        print(label, json.dumps(figures), flush=True)
        return figures

    train = arithmetic_problems(400, 0)
    held = arithmetic_problems(32, 1, exclude={r["problem"] for r in train})
    if not args.skip_base:
        evaluate(model, held, [16, 64], "base 16/64")
    start = time.time()
    owners = [r for r in train[: args.train] for _ in json.loads(args.styles)]
    styles = json.loads(args.styles) * args.train
    outs = sample(
        model,
        [render(tok, r["problem"] + s, None, "exact", prompt_cfg) for r, s in zip(owners, styles, strict=True)],
        args.temperature,
    )
    kept = [
        (r, ids)
        for r, (ids, ended) in zip(owners, outs, strict=True)
        if ended
        and len(ids) >= 8
        and (
            not args.correct_only
            or is_correct(tok.decode(ids, skip_special_tokens=True), r["answer"], "number", require_think_close=False)
        )
    ]
    lengths = sorted(len(ids) for _, ids in kept)
    quantiles = [lengths[int(q * (len(lengths) - 1))] for q in (0, 0.1, 0.25, 0.5, 0.75, 0.9, 1)]
    print(f"sampled {len(outs)}, kept {len(kept)}, length quantiles {quantiles}, {time.time() - start:.0f} s")

    tuned = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in tuned.parameters() if p.requires_grad], lr=args.lr)
    pairs = [
        (
            tok(render(tok, r["problem"], len(ids), "exact", prompt_cfg), add_special_tokens=False)["input_ids"],
            ids,
        )
        for r, ids in kept
    ]
    rng = random.Random(args.seed)
    tuned.train()
    start = time.time()
    for epoch in range(args.epochs):
        rng.shuffle(pairs)
        losses = []
        for i in range(0, len(pairs), 8):
            batch = pairs[i : i + 8]
            width = max(len(p) + len(c) for p, c in batch)
            ids = torch.full((len(batch), width), tok.pad_token_id)
            labels = torch.full((len(batch), width), -100)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for k, (p, c) in enumerate(batch):
                ids[k, : len(p) + len(c)] = torch.tensor(p + c)
                labels[k, len(p) : len(p) + len(c)] = torch.tensor(c)
                mask[k, : len(p) + len(c)] = 1
            loss = tuned(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        print(f"epoch {epoch}: loss {statistics.mean(losses):.3f}, {time.time() - start:.0f} s", flush=True)
    tok.padding_side = "left"
    evaluate(tuned, held, [16, 64], "hindsight 16/64")
    evaluate(tuned, held, [24, 96], "hindsight 24/96")


if __name__ == "__main__":
    main()
