"""Benchmark: l1lite's f16 GGUF export vs llama.cpp's own converter on a random model of R1-Distill-Qwen-1.5B's shape.

    python benchmarks/export.py [--small] [--sdist PATH] [--workdir DIR]

Both converters run in their own subprocess on the same bf16 safetensors folder; wall time and peak RSS
(the child's VmHWM from /proc) are reported, as ratios: time(l1lite) / time(llama.cpp) (goal <= 0.7)
and peak RSS(l1lite) / f16 GGUF size (goal <= 1.2). llama.cpp's converter is taken from the
llama-cpp-python sdist (``pip download --no-deps --no-binary :all: llama-cpp-python==VERSION``) and
extracted into the temporary work folder only. The model uses the tiny R1-style tokenizer padded to
the vocabulary size; llama.cpp's converter does not know that tokenizer's pre-tokenizer hash, so its
pre-tokenizer lookup is answered with "deepseek-r1-qwen", and its Qwen2 vocabulary step goes straight to
the gpt2 path it takes for folders without tokenizer.model (it would first import sentencepiece).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FULL = dict(
    hidden_size=1536,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    intermediate_size=8960,
    vocab_size=151936,
)
SMALL = dict(
    hidden_size=256,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=1024,
    vocab_size=32768,
)
LLAMA_CPP_VERSION = "0.3.36"

_LLAMA_DRIVER = """
import runpy, sys
llama_dir = sys.argv[1]
sys.path[:0] = [llama_dir, llama_dir + "/gguf-py"]
import conversion.base, conversion.qwen
conversion.base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "deepseek-r1-qwen"
conversion.qwen.Qwen2Model.set_vocab = lambda self: self._set_vocab_gpt2()  # its path without tokenizer.model
sys.argv = ["convert_hf_to_gguf.py", sys.argv[2], "--outfile", sys.argv[3], "--outtype", "f16"]
runpy.run_path(llama_dir + "/convert_hf_to_gguf.py", run_name="__main__")
"""

_L1LITE_DRIVER = "import sys\nfrom l1lite.export.gguf import export_gguf\nexport_gguf(sys.argv[1], sys.argv[2])"


def build_model(out: Path, shape: dict) -> Path:
    """A random-init Qwen2 model of ``shape`` in bf16 safetensors, with the tiny tokenizer."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, Qwen2Config

    from l1lite.core.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    config = Qwen2Config(
        **shape,
        max_position_embeddings=131072,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        torch_dtype="bfloat16",
        architectures=["Qwen2ForCausalLM"],
    )
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in AutoModelForCausalLM.from_config(config).state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for name, size in shapes.items():
        if name.endswith("norm.weight"):
            tensors[name] = torch.ones(size, dtype=torch.bfloat16)
        else:
            tensors[name] = (torch.randn(size, generator=gen) * 0.02).to(torch.bfloat16)
    out.mkdir(parents=True)
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    del tensors
    config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def fetch_llama_cpp(sdist: Path | None, work: Path) -> Path:
    """Extract llama.cpp's converter (convert_hf_to_gguf.py, conversion/, gguf-py/) from the sdist into ``work``."""
    if sdist is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
            + [f"llama-cpp-python=={LLAMA_CPP_VERSION}", "-d", str(work)],
            check=True,
            capture_output=True,
        )
        sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
    wanted = ("vendor/llama.cpp/convert_hf_to_gguf.py", "vendor/llama.cpp/conversion/", "vendor/llama.cpp/gguf-py/")
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if any(w in m.name for w in wanted)]
        tar.extractall(work / "src", members=members, filter="data")
    return next((work / "src").glob("*/vendor/llama.cpp"))


# Peak RSS of the child's own address space (VmHWM starts afresh at exec, unlike a forked child's rusage,
# which inherits the parent's high-water mark).
_PEAK = "\nprint('VmHWM', next(x.split()[1] for x in open('/proc/self/status') if x.startswith('VmHWM')))"


def measure(driver: str, *args: str) -> dict:
    """Run ``driver`` (Python code) in a fresh interpreter; return its wall time (s) and peak RSS (bytes)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", driver + _PEAK, *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"converter failed: {done.stderr[-2000:]}")
    peak_kib = int(done.stdout.split("VmHWM")[-1].split()[0])
    return {"seconds": round(seconds, 2), "peak_rss_bytes": peak_kib * 1024}


def same_tensors(a: Path, b: Path) -> bool:
    """Whether two GGUF files hold the same tensors (names, types, shapes, data)."""
    import numpy as np
    from gguf import GGUFReader

    ta = {t.name: t for t in GGUFReader(a).tensors}
    tb = {t.name: t for t in GGUFReader(b).tensors}
    return ta.keys() == tb.keys() and all(
        ta[k].tensor_type == tb[k].tensor_type and np.array_equal(ta[k].data, tb[k].data) for k in ta
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a scaled-down shape (seconds instead of minutes)")
    parser.add_argument("--sdist", type=Path, default=None, help="llama-cpp-python sdist (default: pip download)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary files go")
    args = parser.parse_args(argv)
    shape = SMALL if args.small else FULL
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        llama_dir = fetch_llama_cpp(args.sdist, work)
        model = build_model(work / "model", shape)
        ours = measure(_L1LITE_DRIVER, str(model), str(work / "l1lite.gguf"))
        theirs = measure(_LLAMA_DRIVER, str(llama_dir), str(model), str(work / "llama.gguf"))
        f16_size = (work / "l1lite.gguf").stat().st_size
        result = {
            "shape": shape,
            "safetensors_bytes": (model / "model.safetensors").stat().st_size,
            "f16_gguf_bytes": f16_size,
            "l1lite": ours,
            "llama_cpp": theirs,
            "time_ratio": round(ours["seconds"] / theirs["seconds"], 3),
            "l1lite_rss_over_f16": round(ours["peak_rss_bytes"] / f16_size, 3),
            "llama_cpp_rss_over_f16": round(theirs["peak_rss_bytes"] / f16_size, 3),
            "identical_tensors": same_tensors(work / "l1lite.gguf", work / "llama.gguf"),
        }
    print(json.dumps(result, indent=2))
    print(
        f"time ratio {result['time_ratio']} (goal <= 0.7), "
        f"peak RSS / f16 size {result['l1lite_rss_over_f16']} (goal <= 1.2; llama.cpp: "
        f"{result['llama_cpp_rss_over_f16']}), identical tensors: {result['identical_tensors']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
