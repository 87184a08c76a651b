"""Bad input a new user gives: each is one line ``l1lite CMD: error: ...`` naming the culprit, exit code 2, and no
prior output changes (checksums of the working folder before and after). Real ``l1lite`` processes and files;
the hub is a closed local port (``HF_ENDPOINT``) with an empty cache, so hub ids are "unreachable" for real.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from l1lite.core.files import atomic_path
from l1lite.core.models import PROVENANCE
from l1lite.train.run import record_provenance

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "What is 2 + 2?"


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (hidden ones included), by relative path."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def work(tmp_path) -> Path:
    """The working folder the commands run in, with a prior output that must survive every refusal."""
    folder = tmp_path / "work"
    (folder / "runs" / "earlier").mkdir(parents=True)
    (folder / "runs" / "earlier" / "summary.json").write_text('{"global_step": 4}\n')
    return folder


@pytest.fixture
def l1lite(work, tmp_path, free_port):
    """``l1lite(*args, stdin="")``: run the ``l1lite`` command in ``work`` with an unreachable hub."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # nothing listens: connection refused
        "HF_HOME": str(tmp_path / "hf"),  # an empty hub cache
    }
    env.pop("HF_HUB_OFFLINE", None)

    def run(*args, stdin: str = "") -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "l1lite.cli", *map(str, args)]
        return subprocess.run(cmd, cwd=work, env=env, input=stdin, capture_output=True, text=True, timeout=600)

    return run


def refused(proc: subprocess.CompletedProcess, command: str, *needles: str) -> str:
    """Assert exit code 2, no traceback, and a last stderr line ``l1lite COMMAND: error: ...`` with every needle.

    Above it may stand what third-party imports print (bitsandbytes' kernel notice), never a line of l1lite's.
    """
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("l1lite")] == lines[-1:], proc.stderr[-3000:]
    assert lines[-1].startswith(f"l1lite {command}: error: "), lines[-1]
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    assert "gemm_4bit_forward" not in proc.stderr  # bitsandbytes' notice on every import of TRL: silenced
    return lines[-1]


def test_empty_config_is_refused_not_taken_as_the_paper_model(work, l1lite):
    (work / "empty.yaml").write_text("")
    (work / "comments.yaml").write_text("# nothing set yet\n")
    before = checksums(work)
    refused(l1lite("train", "--config", "empty.yaml"), "train", "empty.yaml: empty config file")
    refused(l1lite("train", "--config", "comments.yaml"), "train", "comments.yaml: empty config file")
    assert checksums(work) == before


def test_missing_model_or_base_is_named_before_any_load(work, l1lite, adapter_dir, tiny_model_dir):
    before = checksums(work)
    proc = l1lite("train", "--config", "demo-cpu", "--set", "model.name=models/gone/tiny")
    refused(proc, "train", "model.name not found: models/gone/tiny (no such file or folder)")
    proc = l1lite("train", "--config", "l1-exact", "--set", "output_dir=runs/l1")  # the paper model: a hub id
    refused(proc, "train", "model.name 'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B' not found locally and the hub is")
    gone = work / "gone" / tiny_model_dir.name  # the adapter's base name, so the name check alone would pass
    proc = l1lite("export", "--base", gone, "--adapter", adapter_dir, "--out", "out")
    refused(proc, "export", f"--base not found: {gone} (no such file or folder)")
    proc = l1lite("export", "--base", tiny_model_dir, "--adapter", work / "no-adapter", "--out", "out")
    refused(proc, "export", "no-adapter: adapter folder not found")
    assert checksums(work) == before


def test_empty_dataset_file_is_one_line(work, l1lite, tiny_model_dir, tiny_gguf):
    (work / "empty.jsonl").write_text("")
    before = checksums(work)
    proc = l1lite(
        "train", "--config", "demo-cpu", "--set", f"model.name={tiny_model_dir}", "--set", "data.dataset=empty.jsonl"
    )
    refused(proc, "train", "empty.jsonl: empty dataset file (0 bytes)")
    proc = l1lite("eval", "--model", tiny_gguf, "--dataset", "empty.jsonl", "--out", "runs/ev", "--no-progress")
    refused(proc, "eval", "empty.jsonl: empty dataset file (0 bytes)")
    assert checksums(work) == before


def test_tiny_model_refuses_an_existing_model_and_export_sees_other_weights(work, l1lite, tiny_model_dir, adapter_dir):
    base = work / tiny_model_dir.name  # the name the adapter was trained on
    shutil.copytree(tiny_model_dir, base)
    adapter = work / "lora"
    shutil.copytree(adapter_dir, adapter)
    record_provenance(adapter, str(base))  # what training writes next to its adapter
    before = checksums(work)
    refused(l1lite("tiny-model", base, "--seed", "1"), "tiny-model", f"{base} exists (use --force to overwrite)")
    assert checksums(work) == before

    replaced = l1lite("tiny-model", base, "--seed", "1", "--force")  # same names and shapes, other weights
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert checksums(base)["model.safetensors"] != before[f"{base.name}/model.safetensors"]
    assert not list(work.glob(".*.tmp-*"))
    before = checksums(work)
    proc = l1lite("export", "--base", base, "--adapter", adapter, "--out", "out", "--no-verify")
    refused(proc, "export", "was trained on other weights than base", PROVENANCE)
    assert checksums(work) == before


@pytest.mark.parametrize("command", ["generate", "chat", "eval"])
@pytest.mark.parametrize("kind", ["not-gguf", "truncated"])
def test_broken_gguf_is_one_line(work, l1lite, tiny_gguf, command, kind):
    bad = work / "model.gguf"
    if kind == "not-gguf":
        bad.write_text("this is a text file\n")
        needle = "not a GGUF file"
    else:
        data = tiny_gguf.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
        needle = "truncated"
    before = checksums(work)
    args = {
        "generate": ["--prompt", QUESTION],
        "chat": [],
        "eval": ["--out", "runs/ev", "--limit", "1", "--no-progress"],
    }[command]
    refused(l1lite(command, "--model", bad, *args), command, f"--model {bad}: {needle}")
    assert checksums(work) == before


def test_budget_that_cannot_be_met_is_refused_with_the_numbers(work, l1lite, tiny_gguf):
    before = checksums(work)
    proc = l1lite("generate", "--model", tiny_gguf, "--budget", "5000", "--max-tokens", "64", "--prompt", QUESTION)
    refused(proc, "generate", "budget 5000 is more than --max-tokens 64 allows (64 tokens)", "can never be met")
    proc = l1lite("eval", "--model", tiny_gguf, "--budgets", "16,5000", "--max-tokens", "64", "--out", "runs/ev")
    refused(proc, "eval", "budget 5000 is more than eval.max_tokens 64 allows")
    proc = l1lite(
        "generate",
        "--model",
        tiny_gguf,
        "--n-ctx",
        "256",
        "--budget",
        "300",
        "--max-tokens",
        "400",
        "--prompt",
        QUESTION,
    )
    line = refused(proc, "generate", "budget 300 is more than the context of 256 (--n-ctx) after a prompt of")
    assert "can never be met" in line
    assert checksums(work) == before
    # a max budget is only a bound: beyond the room it is warned about, and the generation runs
    proc = l1lite(
        "generate", "--model", tiny_gguf, "--budget", "5000", "--mode", "max", "--max-tokens", "8", "--prompt", QUESTION
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "budget 5000 is more than --max-tokens 8 allows (8 tokens): the max budget is only a bound" in proc.stderr


def test_set_errors_name_the_override(work, l1lite):
    (work / "mine.yaml").write_text("model:\n  name: l1lite:tiny\nlora:\n  r: 4\n")
    (work / "typo.yaml").write_text("lora:\n  rr: 4\n")
    before = checksums(work)
    proc = l1lite("train", "--config", "mine.yaml", "--set", "lora.r=big")
    line = refused(proc, "train", "--set lora.r=big: config key 'lora.r' must be int, got 'big'")
    assert "mine.yaml" not in line
    proc = l1lite("train", "--config", "mine.yaml", "--set", "curriculum.lo=5", "--set", "curriculum.hgh=9")
    refused(proc, "train", "--set curriculum.hgh=9: unknown config key 'curriculum.hgh'")
    proc = l1lite("train", "--config", "mine.yaml", "--set", 'trainer.learning_rate="1e-4"')  # TRL checks no types
    refused(proc, "train", "config key 'trainer.learning_rate' must be float, got '1e-4'")
    proc = l1lite("eval", "--model", "m.gguf", "--set", "samples=many")
    refused(proc, "eval", "--set samples=many: config key 'samples' must be int")
    refused(  # an error in the file still names the file
        l1lite("train", "--config", "typo.yaml", "--set", "lora.r=4"),
        "train",
        "typo.yaml: unknown config key 'lora.rr'",
    )
    assert checksums(work) == before


def test_flags_argparse_refuses_are_one_line(work, l1lite):
    before = checksums(work)
    for args, needle in [
        (("eval", "--model", "m.gguf", "--samples", "many"), "--samples: invalid int value: 'many'"),
        (("export", "--base", "m"), "required: --out"),
        (("generate", "--budget"), "--budget: expected one argument"),
        (("eval", "--model", "m.gguf", "--budgets", "16,x"), "--budgets: must be comma-separated integers, got '16,x'"),
        (("bench", "dial", "--seeds", "0,one"), "--seeds: must be comma-separated integers, got '0,one'"),
        (("train", "--config", "demo-cpu", "--bogus"), "unrecognized arguments: --bogus"),  # names train
    ]:
        proc = l1lite(*args)
        assert refused(proc, args[0], needle, "(--help for usage)") == proc.stderr.strip()  # no usage block above
    assert checksums(work) == before


def test_malformed_jsonl_is_reported_by_line_number(work, l1lite, tiny_gguf):
    rows = [json.dumps({"problem": f"What is {i} + {i}?", "answer": str(2 * i)}) for i in range(3)]
    (work / "bad.jsonl").write_text("\n".join([rows[0], rows[1], '{"problem": "x", "answer": 1', rows[2]]) + "\n")
    (work / "list.jsonl").write_text(rows[0] + "\n[1, 2]\n")
    before = checksums(work)
    proc = l1lite("eval", "--model", tiny_gguf, "--dataset", "bad.jsonl", "--out", "runs/ev", "--no-progress")
    refused(proc, "eval", "bad.jsonl:3: not valid JSON")
    proc = l1lite("train", "--config", "demo-cpu", "--set", "data.dataset=list.jsonl")
    refused(proc, "train", "list.jsonl:2: not a JSON object")
    assert checksums(work) == before


def test_stale_temps_of_a_killed_run_are_removed_by_the_next_run(tmp_path):
    """A ``.NAME.tmp-PID`` whose process is gone is removed; one whose process still runs is left alone."""
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead.kill()
        dead.wait()
        (tmp_path / f".m.gguf.tmp-{dead.pid}").write_bytes(b"GGUF half")
        (tmp_path / f".merged.tmp-{dead.pid}").mkdir()
        (tmp_path / f".m.gguf.tmp-{live.pid}").write_bytes(b"GGUF in progress")
        (tmp_path / "keep.txt").write_text("prior output\n")
        with atomic_path(tmp_path / "m.gguf") as tmp:
            tmp.write_bytes(b"GGUF whole")
        with atomic_path(tmp_path / "merged") as tmp:
            tmp.mkdir()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [f".m.gguf.tmp-{live.pid}", "keep.txt", "m.gguf", "merged"]
        )
        assert (tmp_path / "m.gguf").read_bytes() == b"GGUF whole"
    finally:
        live.kill()
        live.wait()


def test_missing_dataset_is_found_before_the_model_loads(work, l1lite, tiny_model_dir):
    broken = work / "broken-model"  # loading these weights would end in a safetensors traceback
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\0" * 64)
    before = checksums(work)
    proc = l1lite(
        "train", "--config", "demo-cpu", "--set", f"model.name={broken}", "--set", "data.dataset=nowhere.jsonl"
    )
    refused(proc, "train", "dataset file not found: nowhere.jsonl")
    proc = l1lite(
        "train", "--config", "demo-cpu", "--set", f"model.name={broken}", "--set", "data.dataset=someone/no-such-set"
    )
    refused(proc, "train", "dataset 'someone/no-such-set' not found locally and the hub is unreachable")
    assert checksums(work) == before


# --- round two (#44): flags that deleted what they were not given, silent wrong results, tracebacks ---

RUNNER = r"""
import contextlib, io, json, logging, sys, traceback
from l1lite.cli import main
done = []
for argv in json.loads(sys.stdin.read()):
    logging.root.handlers.clear()  # a command's logging.basicConfig wrote to the stderr of the one before
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
        except BaseException:
            code = 1
            err.write("Traceback\n" + traceback.format_exc())
    done.append({"returncode": code, "stderr": err.getvalue()})
print(json.dumps(done))
"""


@pytest.fixture
def l1lite_many(work, tmp_path, free_port):
    """``l1lite_many(*argvs)``: run several ``l1lite`` command lines in one process in ``work`` (one import of
    torch and TRL for all); each one's (returncode, stderr), as ``l1lite`` gives them."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "HF_HOME": str(tmp_path / "hf"),
    }
    env.pop("HF_HUB_OFFLINE", None)

    def run(*argvs: list) -> list[subprocess.CompletedProcess]:
        text = json.dumps([[str(a) for a in argv] for argv in argvs])
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER], cwd=work, env=env, input=text, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        results = json.loads(proc.stdout.strip().splitlines()[-1])
        pairs = zip(argvs, results, strict=True)
        return [subprocess.CompletedProcess(argv, r["returncode"], "", r["stderr"]) for argv, r in pairs]

    return run


def test_force_replaces_only_an_output_of_its_own(work, l1lite_many, tiny_model_dir):
    from test_evaluate import write_run

    for name in ("A", "B"):
        write_run(work / "runs" / name, ["p1", "p2"], [16, 32], ["prompt"])
    (work / "plots").mkdir()
    (work / "plots" / "mine.txt").write_text("not a plot\n")
    (work / "notes.txt").write_text("a file\n")
    (work / "models" / "other").mkdir(parents=True)
    (work / "models" / "other" / "weights.bin").write_bytes(b"\0" * 8)
    before = checksums(work)
    preview = ["curriculum", "preview", "--config", "demo-cpu", "--buckets", "1", "--force"]
    export = ["export", "--base", tiny_model_dir, "--no-verify"]
    cases = [
        (["eval", "compare", "--force", "--out", "runs/A", "runs/A", "runs/B"], "eval", "--out runs/A holds the eval"),
        (["eval", "compare", "--force", "--out", "runs", "runs/A", "runs/B"], "eval", "--out runs holds the eval"),
        (["eval", "compare", "--force", "--out", "notes.txt", "runs/A", "runs/B"], "eval", "notes.txt is a file"),
        (["eval", "compare", "--force", "--out", "plots", "runs/A", "runs/B"], "eval", "plots holds mine.txt"),
        ([*preview, "--png", "plots"], "curriculum", "--png plots is a folder; it must be a file"),
        (["tiny-model", "notes.txt", "--force"], "tiny-model", "notes.txt is a file; --force replaces a folder"),
        (["tiny-model", "models/other", "--force"], "tiny-model", "holds weights.bin, which l1lite does not write"),
        ([*export, "--out", "out", "--name", "../../escape"], "export", "--name '../../escape' must be a file name"),
        ([*export, "--out", "notes.txt"], "export", "--out notes.txt is a file; it must be a folder"),
        ([*export, "--out", "notes.txt/sub"], "export", "--out notes.txt/sub: "),
    ]
    for proc, (_, command, needle) in zip(l1lite_many(*[c[0] for c in cases]), cases, strict=True):
        refused(proc, command, needle)
    assert checksums(work) == before


def test_train_ranges_outputs_and_yaml_are_checked_before_the_model(work, l1lite_many):
    (work / "notes.txt").write_text("a file\n")
    (work / "latin.jsonl").write_bytes(
        b'{"question": "1 + 1?", "answer": "2"}\n{"question": "caf\xe9", "answer": "2"}\n'
    )
    run = _checkpoints(work / "runs" / "r")
    named = run / "checkpoint-2"
    resume = f"--resume {named}: {named / 'optimizer.pt'} is truncated or corrupt"
    (work / "twice.yaml").write_text("model:\n  name: l1lite:tiny\nlora:\n  r: 4\n  r: 8\n")
    before = checksums(work)
    train = ["train", "--config", "demo-cpu", "--set", "output_dir=runs/new"]
    cases = [
        ("lora.r=0", "lora.r must be between 1 and 1024, got 0"),
        ("lora.r=1000000000", "lora.r must be between 1 and 1024, got 1000000000"),
        ("lora.dropout=5", "lora.dropout must be in [0, 1), got 5.0"),
        ("trainer.max_completion_length=0", "trainer.max_completion_length must be >= 1, got 0"),
        ("trainer.temperature=-1", "trainer.temperature must be > 0"),
        ("trainer.max_steps=-1", "trainer.max_steps must be >= 0"),
        ("output_dir=", "output_dir is empty"),
        ("output_dir=notes.txt", "output_dir notes.txt is a file; it must be a folder"),
        ("output_dir=notes.txt/run", "output_dir notes.txt/run: "),
    ]
    argvs = [[*train, "--set", assignment] for assignment, _ in cases]
    others = [  # other commands that import TRL, in the same process
        (["train", "--config", "demo-cpu", "--set", "data.dataset=latin.jsonl"], "train", "latin.jsonl:2: not valid"),
        (["train", "--config", "demo-cpu", "--set", f"output_dir={run}", "--resume", named], "train", resume),
        (["curriculum", "preview", "--config", "demo-cpu", "--png", "notes.txt/p.png"], "curriculum", "notes.txt is a"),
        (["curriculum", "preview", "--config", "demo-cpu", "--steps", "1000000000"], "curriculum", "--steps must be"),
        (["bench", "dial", "--seeds", ","], "bench", "--seeds: must be comma-separated integers, got ','"),
        (["bench", "dial", "--skip-base"], "bench", "--skip-base is for bench real (the base eval of a parallel run)"),
    ]
    argvs += [argv for argv, _, _ in others]
    argvs.append(["train", "--config", "twice.yaml"])
    # a warning, then the refusal of the model: nothing loads
    argvs.append([*train, "--set", "curriculum.hi=1000000000", "--set", "model.name=models/gone/tiny"])
    procs = l1lite_many(*argvs)
    for proc, (_, needle) in zip(procs[: len(cases)], cases, strict=True):
        refused(proc, "train", needle)
    for proc, (_, command, needle) in zip(procs[len(cases) : -2], others, strict=True):
        refused(proc, command, needle)
    refused(procs[-2], "train", "twice.yaml: invalid YAML (key 'r' given twice (lines 4 and 5))")
    refused(procs[-1], "train", "model.name not found: models/gone/tiny")
    assert "curriculum targets reach 1000000000 tokens, more than trainer.max_completion_length 48" in procs[-1].stderr
    assert checksums(work) == before and not (work / "config.yaml").exists() and not (work / "runs" / "new").exists()


def test_data_and_paths_of_eval_and_generate_are_named(work, l1lite_many, tiny_gguf):
    (work / "notes.txt").write_text("a file\n")
    latin = b'{"question": "What is 1 + 1?", "answer": "2"}\n{"question": "caf\xe9", "answer": "2"}\n'
    (work / "latin.jsonl").write_bytes(latin)  # Latin-1, not UTF-8
    (work / "latin.txt").write_bytes(b"What is 1 + 1?\ncaf\xe9?\n")
    (work / "folder").mkdir()
    (work / "folder" / "part.jsonl").write_text('{"question": "x", "answer": 1\n')
    before = checksums(work)
    ev = ["eval", "--model", tiny_gguf, "--no-progress", "--budgets", "16", "--max-tokens", "32"]
    gen = ["generate", "--model", tiny_gguf, "--max-tokens", "8"]
    cases = [
        ([*ev, "--out", "notes.txt"], "eval", "--out notes.txt is a file; it must be a folder"),
        ([*ev, "--out", "runs/ev", "--dataset", "latin.jsonl"], "eval", "latin.jsonl:2: not valid UTF-8 (byte 0xe9"),
        ([*ev, "--out", "runs/ev", "--dataset", "folder"], "eval", "cannot load dataset 'folder'"),
        ([*ev, "--out", "runs/ev", "--endpoint", "notaurl", "--tokenizer", tiny_gguf], "eval", "--endpoint 'notaurl'"),
        ([*ev, "--out", "runs/ev", "--concurrency", "0"], "eval", "eval.concurrency must be >= 1"),
        ([*gen, "--file", "latin.txt"], "generate", "latin.txt:2: not valid UTF-8 (byte 0xe9 at column 4)"),
        ([*gen, "--temperature", "-1", "--prompt", "hi"], "generate", "--temperature must be >= 0, got -1.0"),
        ([*gen, "--top-p", "5", "--prompt", "hi"], "generate", "--top-p must be in (0, 1], got 5.0"),
        ([*gen, "--prompt", ""], "generate", "--prompt is empty"),
    ]
    for proc, (_, command, needle) in zip(l1lite_many(*[c[0] for c in cases]), cases, strict=True):
        refused(proc, command, needle)
    assert checksums(work) == before and not (work / "runs" / "ev").exists()


@contextmanager
def fake_endpoint(answer: bytes) -> str:
    """A local OpenAI-compatible server answering every completion with ``answer``; its URL. ``.models`` counts
    the GET /v1/models requests (one per backend l1lite opens)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            server.models += 1
            self._send(json.dumps({"object": "list", "data": [{"id": "fake"}]}).encode())

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self._send(answer)

        def _send(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.models = 0
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_eval_endpoints_resumes_and_long_questions(work, l1lite, l1lite_many, tiny_gguf, free_port):
    rows = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(6)]
    rows[3]["question"] = "Add these numbers. " + "1 + " * 300 + "1"  # longer than --n-ctx 256
    rows[4].pop("answer")
    rows[5]["answer"] = None
    (work / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    good = json.dumps({"choices": [{"text": "4</think> \\boxed{4}", "finish_reason": "stop"}]}).encode()
    ev = ["eval", "--tokenizer", tiny_gguf, "--dataset", "data.jsonl", "--budgets", "16", "--strategies", "none"]
    ev += ["--max-tokens", "16", "--no-progress"]
    with fake_endpoint(b"<html>bad gateway</html>") as html, fake_endpoint(b'{"id": 1}') as empty:
        url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens
        procs = l1lite_many(
            [*ev, "--endpoint", f"http://127.0.0.1:{html.server_port}/v1", "--out", "runs/html"],
            [*ev, "--endpoint", f"http://127.0.0.1:{empty.server_port}/v1", "--out", "runs/empty"],
            [*ev, "--endpoint", url, "--out", "runs/ev"],  # fails after writing config.json
        )
    refused(procs[0], "eval", "/v1/completions: the server did not answer with JSON (it sent '<html>bad gateway")
    refused(procs[1], "eval", "/v1/completions: the answer has no choices")
    refused(procs[2], "eval", "/v1/completions: cannot reach the endpoint")
    assert "data.jsonl: skipped 2 rows without a question or answer (lines 5, 6)" in procs[0].stderr

    # the fixed rerun into the same --out starts there; one problem's prompt does not fit: skipped, not fatal
    fixed = ["eval", "--model", tiny_gguf, "--n-ctx", "256", *ev[3:], "--out", "runs/ev"]
    done = l1lite(*fixed)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "problem 'data-3' (none, budget None) skipped: prompt of" in done.stderr
    results = [json.loads(line) for line in (work / "runs/ev/results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in results] == ["data-0", "data-1", "data-2"] and results[1]["gold"] == "2"

    # the data edited in place: the rerun refuses to reuse rows of other data
    rows[1]["answer"] = "999"
    (work / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = checksums(work)
    refused(l1lite(*fixed), "eval", "runs/ev holds results of other data: problem 'data-1' of data.jsonl has changed")
    assert checksums(work) == before

    # --concurrency 1000 for 3 samples: 3 backends (each asks /v1/models once), not 1000
    with fake_endpoint(good) as server:
        ok = l1lite(*ev, "--endpoint", f"http://127.0.0.1:{server.server_port}/v1", "--concurrency", "1000",
                    "--out", "runs/many")  # fmt: skip
        assert ok.returncode == 0, ok.stderr[-3000:]
        assert server.models == 4  # the 4 answered problems of data.jsonl


def test_generate_and_eval_see_other_weights_as_export_does(work, l1lite_many, tiny_model_dir, adapter_dir):
    from l1lite.core.tiny import build_tiny_model

    base = build_tiny_model(work / tiny_model_dir.name, seed=1)  # the adapter's base name, other weights
    adapter = work / "lora"
    shutil.copytree(adapter_dir, adapter)
    record_provenance(adapter, str(tiny_model_dir))  # trained on the seed-0 weights
    before = checksums(work)
    gen, ev = l1lite_many(
        ["generate", "--model", base, "--adapter", adapter, "--prompt", QUESTION, "--max-tokens", "4"],
        ["eval", "--model", base, "--adapter", adapter, "--budgets", "16", "--max-tokens", "32", "--out", "runs/ev"],
    )
    refused(gen, "generate", "was trained on other weights than base", PROVENANCE)
    refused(ev, "eval", "was trained on other weights than base", PROVENANCE)
    assert checksums(work) == before


def _checkpoints(run: Path) -> Path:
    """A run folder with checkpoint-1 (whole) and checkpoint-2 whose optimizer.pt is garbage (no model needed)."""
    for step in (1, 2):
        ckpt = run / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "curriculum.json").write_text("{}\n")
        (ckpt / "trainer_state.json").write_text("{}\n")
    (run / "checkpoint-2" / "optimizer.pt").write_bytes(b"not a torch.save archive" * 10)
    return run


def test_resume_skips_a_checkpoint_with_a_garbage_optimizer_state(tmp_path, caplog):
    """As a corrupt adapter is skipped (the refusal of one named by --resume: the train test above)."""
    from l1lite.train.run import last_checkpoint

    run = _checkpoints(tmp_path / "run")
    assert last_checkpoint(run) == str(run / "checkpoint-1")
    assert "skipping checkpoint-2: " in caplog.text and "optimizer.pt is truncated or corrupt" in caplog.text


def test_generate_reads_dev_stdin_as_a_file(work, l1lite, tiny_gguf):
    proc = l1lite(
        "generate", "--model", tiny_gguf, "--file", "/dev/stdin", "--max-tokens", "4", stdin="1 + 1?\n2 + 2?\n"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("[thinking ") == 2


def test_serve_refuses_addresses_it_cannot_listen_on(work, l1lite_many, tiny_gguf):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        serve = ["serve", "--model", tiny_gguf]
        procs = l1lite_many(
            [*serve, "--port", "99999"],
            [*serve, "--host", "999.1.1.1"],
            [*serve, "--port", port],
            [*serve, "--top-p", "5"],
        )
    refused(procs[0], "serve", "--port must be between 1 and 65535, got 99999")
    refused(procs[1], "serve", "--host 999.1.1.1: not an address of this machine")
    refused(procs[2], "serve", f"cannot listen on 127.0.0.1:{port}: Address already in use")
    refused(procs[3], "serve", "--top-p must be in (0, 1], got 5.0")
