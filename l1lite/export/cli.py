"""``l1lite export``: command-line flags and the printed summary; the work is :func:`l1lite.export.export`.

Nothing in ``l1lite.export`` may import this module (it imports the package).
"""

from __future__ import annotations

import argparse

from l1lite.export import QUANT_TYPES, VerificationError, export
from l1lite.export.merge import MERGE_TARGETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: ``l1lite export --base ID_OR_DIR --adapter DIR --out DIR [--quant f16,q8_0,q4_k_m] ...``."""
    parser.add_argument("--base", required=True, help="base model: hub id, local folder or l1lite:NAME")
    parser.add_argument("--adapter", default=None, help="LoRA adapter folder (omit to export the base as is)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quant", default="f16", help=f"comma-separated GGUF types: {', '.join(QUANT_TYPES)}")
    parser.add_argument("--name", default=None, help="file name stem (default: adapter or base folder name)")
    parser.add_argument("--merge-into", default="base16", choices=MERGE_TARGETS)
    parser.add_argument("--llama-cpp", default=None, metavar="DIR", help="use this llama.cpp checkout's converter")
    parser.add_argument("--no-verify", action="store_true", help="skip comparing the GGUFs with the merged model")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar, one line when done")


def run(args: argparse.Namespace) -> int:
    """CLI entry point."""
    quant = tuple(q.strip() for q in args.quant.split(",") if q.strip())
    try:
        result = export(
            args.base,
            args.adapter,
            args.out,
            quant=quant,
            name=args.name,
            merge_into=args.merge_into,
            force=args.force,
            verify=not args.no_verify,
            llama_cpp=args.llama_cpp,
            progress=not args.no_progress,
        )
    except VerificationError as e:
        print(f"l1lite export: error: {e}")
        return 1
    print(f"merged model: {result['merged']}")
    for q, path in result["gguf"].items():
        line = f"{q:>7}: {path}"
        if result["verify"]:
            v = result["verify"][q]
            line += (
                f"  max|dlogit| {v['max_abs_logit_diff']:.4f}  top-1 {v['top1_agreement']:.3f}"
                f"  greedy {'identical' if v['greedy_identical'] else 'differs'}"
            )
        print(line)
    print(f"Modelfile: {result['modelfile']}  (ollama create NAME -f {result['modelfile']})")
    return 0
