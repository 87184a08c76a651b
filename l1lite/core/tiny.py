"""Offline tiny Qwen2 model with an R1-Distill-style tokenizer and chat template.

The folder it writes loads with ``AutoModelForCausalLM`` / ``AutoTokenizer`` and is laid
out like ``deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B``, so every stage can be exercised
for real without the model hub. Owns the tiny shape and the tokenizer's training corpus (the shipped
problems); imports only r1 (the format) and files (its command writes atomically), must not import any
pipeline stage (``l1lite.core.models`` caches it).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from l1lite.core.r1 import ADDED_TOKENS, BOS, CHAT_TEMPLATE, EOS, SPECIAL_TOKENS

# Qwen2's pre-tokenizer split (the one llama.cpp calls "deepseek-r1-qwen").
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _corpus() -> list[str]:
    rows = resources.files("l1lite.assets").joinpath("math_small.jsonl").read_text().splitlines()
    texts = [json.loads(r)["problem"] for r in rows]
    texts += [
        "Let's think step by step and output the final answer within \\boxed{}. Think for 512 tokens.",
        "Think for maximum 1024 tokens. Wait, let me check that again. So the answer is \\boxed{42}.",
        "First, add the numbers. Then multiply. Therefore the result is correct. Hmm, alternatively we verify.",
        "0123456789 + - * / = ( ) { } [ ] ^ $ \\frac{1}{2} \\times \\cdot \\sqrt{2} \\pi x y z",
    ]
    return texts * 4


def build_tokenizer(vocab_size: int = 640):
    """Train a byte-level BPE tokenizer locally with R1-Distill's special tokens and template."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=EOS,
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=16384,
        clean_up_tokenization_spaces=False,
    )


def build_tiny_model(
    out: str | Path,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    seed: int = 0,
    vocab_size: int | None = None,
    dtype: str = "float32",
) -> Path:
    """Write a random-init Qwen2ForCausalLM (tiny by default) and the offline R1-style tokenizer to ``out``.

    Args:
        out: folder to write ``config.json``, the weights and the tokenizer to.
        hidden_size: model width.
        num_layers: decoder layers.
        num_heads: attention heads.
        num_kv_heads: key/value heads (grouped-query attention, as in Qwen2).
        intermediate_size: MLP width.
        seed: seed of the random initialisation.
        vocab_size: embedding rows beyond the tokenizer (e.g. 151936 for the real shape); `None` rounds the tokenizer's
            size up to a multiple of 64.
        dtype: weight dtype, a torch dtype name.
    """
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    vocab = vocab_size or -(-len(tokenizer) // 64) * 64  # padded like real checkpoints (embedding rows > tokens)
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=8192,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype=dtype,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    cfg_path = out / "tokenizer_config.json"
    tok_cfg = json.loads(cfg_path.read_text())
    tok_cfg["unk_token"] = None
    cfg_path.write_text(json.dumps(tok_cfg, indent=2, ensure_ascii=False))
    return out


def add_arguments(parser) -> None:
    """CLI: ``l1lite tiny-model OUT [--seed N] [--force]``."""
    parser.add_argument("out", help="folder to write the model and tokenizer to")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="replace a model already in OUT")


def run(args) -> int:
    """CLI entry point: the folder is written whole or not at all, and an existing one only with ``--force``."""
    from l1lite.core.files import HF_MODEL_FILES, atomic_path

    with atomic_path(args.out, force=args.force, holds=HF_MODEL_FILES) as tmp:
        build_tiny_model(tmp, seed=args.seed)
    print(f"tiny model written to {args.out}")
    return 0
