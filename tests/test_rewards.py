"""LCPO rewards, graders, bounded grading and the metrics a real GRPOTrainer run logs."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from l1lite.core.config import ConfigError, RewardConfig
from l1lite.core.grading import count_boxed, extract_boxed, fast_verdict, is_correct, verify_math
from l1lite.core.r1 import split_thinking
from l1lite.train.rewards import build_reward_funcs, lcpo_exact, lcpo_max, length_metrics

CORPUS = [
    json.loads(line) for line in (Path(__file__).parent / "data" / "r1_completions.jsonl").read_text().splitlines()
]
RIGHT = "Adding the digits with carries gives 232.\n</think>\n\nThe sum is \\boxed{232}."
WRONG = "Adding the digits I get 222.\n</think>\n\nThe sum is \\boxed{222}."
UNCLOSED = "Adding the digits with carries gives 232, so \\boxed{232}"


# ---- formulas ------------------------------------------------------------------------------------------


def test_lcpo_exact_formula():
    assert lcpo_exact(True, 500, 500) == 1.0
    assert lcpo_exact(True, 1500, 500) == pytest.approx(1 - 0.0003 * 1000)
    assert lcpo_exact(True, 0, 1000) == pytest.approx(0.7)  # under and over penalized alike
    assert lcpo_exact(False, 500, 500) == 0.0
    assert lcpo_exact(False, 4500, 500) == pytest.approx(-1.2)  # not clipped
    assert lcpo_exact(True, 600, 500, alpha=0.01) == pytest.approx(0.0)


def test_lcpo_max_formula_and_clipping_edges():
    assert lcpo_max(True, 500, 500) == pytest.approx(0.5)  # at the budget: delta
    assert lcpo_max(True, 0, 500) == 1.0  # 0.001*500 + 0.5 = 1.0 exactly
    assert lcpo_max(True, 0, 4000) == 1.0  # clipped above
    assert lcpo_max(True, 750, 500) == pytest.approx(0.25)
    assert lcpo_max(True, 1000, 500) == 0.0  # 0 exactly at target + delta/alpha
    assert lcpo_max(True, 3000, 500) == 0.0  # clipped below, never negative
    assert lcpo_max(False, 100, 500) == 0.0  # wrong answers earn nothing however short
    assert lcpo_max(True, 400, 500, alpha=0.002, delta=0.2) == pytest.approx(0.4)


# ---- extraction helpers ----------------------------------------------------------------------------------


def test_extract_boxed():
    assert extract_boxed("a \\boxed{1} b \\boxed{\\frac{1}{\\sqrt{2}}} c") == "\\frac{1}{\\sqrt{2}}"
    assert extract_boxed("\\boxed{\\boxed{5}}") == "5"
    assert extract_boxed("\\fbox{B}") == "B"
    assert extract_boxed("$\\boxed 42$") == "42"
    assert extract_boxed("\\boxed{ {a}{b} }") == "{a}{b}"
    assert extract_boxed("no box here") is None
    assert extract_boxed("\\boxed{1} then \\boxed{2") is None  # the last box is truncated
    assert extract_boxed("\\boxed{}") == ""


def test_split_thinking():
    assert split_thinking("think</think>answer</think>x") == ("think", "answer</think>x", True)
    assert split_thinking("<think>\nthink</think>ans") == ("\nthink", "ans", True)
    assert split_thinking("still thinking \\boxed{1}") == ("still thinking \\boxed{1}", "", False)


# ---- graders ----------------------------------------------------------------------------------------------


def test_corpus_size_and_coverage():
    assert len(CORPUS) >= 40
    assert {r["grader"] for r in CORPUS} == {"math", "choice", "exact"}
    assert {True, False} == {r["expected"] for r in CORPUS}


@pytest.mark.parametrize("row", CORPUS, ids=[r["id"] for r in CORPUS])
def test_corpus_verdicts(row):
    verdict = is_correct(
        row["completion"], row["gold"], row["grader"], require_think_close=row.get("require_think_close", True)
    )
    assert verdict is row["expected"], row["note"]


def test_equivalent_forms_of_one_half_agree():
    forms = ["\\frac{1}{2}", "0.5", "\\dfrac12", "1/2", "\\tfrac{1}{2}", ".5"]
    for gold in forms:
        for pred in forms:
            assert is_correct(f"ok</think>\\boxed{{{pred}}}", gold), (gold, pred)


def test_fast_path_settles_plain_numbers_and_defers_the_rest():
    assert fast_verdict("7", "x = 7") is True and fast_verdict("7", "x = 8") is False
    assert fast_verdict("50", "50 \\text{ km/h}") is True and fast_verdict("-\\frac{3}{2}", "-1.5") is True
    assert fast_verdict("\\frac{1}{3}", "\\frac{2}{5}") is False
    for gold, pred in [("\\frac{1}{3}", "0.333333"), ("x=7", "y=7"), ("\\sqrt{2}", "\\frac{2}{\\sqrt{2}}")]:
        assert fast_verdict(gold, pred) is None, (gold, pred)  # left to math-verify, which rounds floats
    assert is_correct("t</think>\\boxed{0.333333}", "\\frac{1}{3}")


def test_custom_grader_and_import_errors():
    # operator.contains(completion, gold): gold appears anywhere in the completion
    assert is_correct(RIGHT, "carries", "operator:contains")
    assert not is_correct(RIGHT, "nowhere", "operator:contains")
    assert not is_correct(UNCLOSED, "carries", "operator:contains")  # </think> rule applies first
    for bad in ["nosuchpkg.mod:fn", "operator:nosuchfn", "operator", "json:__doc__"]:
        with pytest.raises(ConfigError) as e:
            build_reward_funcs(RewardConfig(grader=bad))
        assert bad in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="reward.custom 'nosuchpkg:f'"):
        build_reward_funcs(RewardConfig(custom=["nosuchpkg:f"]))


# ---- bounded grading ----------------------------------------------------------------------------------------

TIMEOUT = 1.0
SLACK = (
    1.0  # kill + spawning a new spare, on a loaded machine; far below the indefinite hang math-verify shows on these
)


def _timed(fn, *args, **kwargs):
    start = time.monotonic()
    value = fn(*args, **kwargs)
    return value, time.monotonic() - start


def _adversarial_checks(tag: int) -> list[str]:
    """Run the adversarial inputs (made unique by ``tag`` to bypass the verdict cache); return failures."""
    failures = []
    assert verify_math("\\frac{1}{2}", f"\\frac{{{tag}}}{{{2 * tag}}}+0", TIMEOUT)  # worker up and warm
    tower = f"9^{{9^{{9^{{9^{{{tag}}}}}}}}}"
    huge = "+".join(["1"] * 50_000) + f"+{tag}"  # ~100 KB
    for gold, pred, cap in [("1", tower, 2000), ("2", huge, 200_000)]:
        verdict, took = _timed(
            is_correct, f"think</think>\\boxed{{{pred}}}", gold, timeout_s=TIMEOUT, max_answer_chars=cap
        )
        if verdict or took > TIMEOUT + SLACK:
            failures.append(f"{pred[:20]}: verdict {verdict} in {took:.2f}s")
    # the worker was restarted: ordinary symbolic grading still works afterwards
    assert verify_math("\\sqrt{2}", f"\\frac{{{2 * tag}}}{{{tag}\\sqrt{{2}}}}", 30.0)
    return failures


def test_adversarial_inputs_are_bounded_on_main_thread():
    assert _adversarial_checks(7) == []


def test_adversarial_inputs_are_bounded_off_main_thread():
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("failures", _adversarial_checks(8)))
    thread.start()
    thread.join(timeout=120)
    assert result == {"failures": []}


ORPHAN_SCRIPT = """
import os, threading, time
from l1lite.core.grading import _WORKER, verify_math
verify_math("1", "\\\\sqrt{1}")
print(_WORKER._active.proc.pid, _WORKER._spare.proc.pid, flush=True)
threading.Thread(target=verify_math, args=("1", "9^{9^{9^{9^{9}}}}", 600.0), daemon=True).start()
time.sleep(1.0)
os.kill(os.getpid(), 9)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_workers_die_with_a_killed_parent():
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", ORPHAN_SCRIPT], capture_output=True, text=True, cwd=root, timeout=120)
    assert out.returncode == -9, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(map(_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_running, pids))  # not even the one busy on the tower


def _running(pid: int) -> bool:
    try:  # a zombie (state Z) left unreaped by a container's init is dead too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_oversized_answer_is_wrong_without_grading():
    huge = "1" + "+0" * 50_000
    verdict, took = _timed(is_correct, f"t</think>\\boxed{{{huge}}}", "1")
    assert verdict is False and took < 0.1


# ---- TRL reward callables ---------------------------------------------------------------------------------------


def _batch(completions, ids_lens, targets, modes):
    return dict(
        prompts=[[{"role": "user", "content": "q"}]] * len(completions),
        completions=completions,
        completion_ids=[[7] * n for n in ids_lens],
        answer=["232"] * len(completions),
        target_tokens=targets,
        budget_mode=modes,
    )


def test_build_reward_funcs_names_and_format_reward():
    names = [f.__name__ for f in build_reward_funcs(RewardConfig())]
    assert names == ["lcpo_exact"]
    funcs = build_reward_funcs(RewardConfig(mode="dual", format_weight=0.2, custom=["l1lite.core.grading:count_boxed"]))
    assert [f.__name__ for f in funcs[:2]] == ["lcpo_dual", "format"] and funcs[2] is count_boxed
    two_boxes = "x</think>\\boxed{1} or \\boxed{2}"
    assert funcs[1](completions=[RIGHT, UNCLOSED, two_boxes, "x</think>none"]) == [0.2, 0.0, 0.0, 0.0]
    with pytest.raises(ConfigError, match="reward.mode 'both'"):
        build_reward_funcs(RewardConfig(mode="both"))


def test_dual_mode_dispatches_per_row():
    (reward,) = build_reward_funcs(RewardConfig(mode="dual"))
    batch = _batch([RIGHT, RIGHT, WRONG, RIGHT], [700, 700, 100, 300], [500, 500, 500, 1000], ["exact", "max"] * 2)
    got = reward(**batch)
    want = [
        lcpo_exact(True, 700, 500),
        lcpo_max(True, 700, 500),
        lcpo_exact(False, 100, 500),
        lcpo_max(True, 300, 1000),
    ]
    assert got == pytest.approx(want)
    assert got == pytest.approx([1 - 0.0003 * 200, 0.3, -0.0003 * 400, 1.0])
    with pytest.raises(ValueError, match="budget_mode"):
        reward(**{**batch, "budget_mode": None})
    with pytest.raises(ValueError, match="'maximum'"):
        reward(**{**batch, "budget_mode": ["exact", "maximum", "exact", "max"]})


def test_fixed_modes_ignore_budget_mode_column():
    batch = _batch([RIGHT, RIGHT], [700, 700], [500, 500], ["max", "exact"])
    (exact,) = build_reward_funcs(RewardConfig(mode="exact", alpha_exact=0.001))
    (mx,) = build_reward_funcs(RewardConfig(mode="max", delta=0.4))
    assert exact(**batch) == pytest.approx([0.8, 0.8])
    assert mx(**batch) == pytest.approx([0.2, 0.2])


def test_token_count_comes_from_completion_ids_and_both_completion_shapes_work():
    (reward,) = build_reward_funcs(RewardConfig(mode="exact"))
    conversational = [[{"role": "assistant", "content": RIGHT}], [{"role": "assistant", "content": WRONG}]]
    plain = _batch([RIGHT, WRONG], [100, 900], [500, 500], ["exact"] * 2)
    chat = {**plain, "completions": conversational}
    assert reward(**plain) == reward(**chat) == pytest.approx([1 - 0.0003 * 400, -0.0003 * 400])
    with pytest.raises(TypeError, match="completion must be"):
        reward(**{**plain, "completions": [42, 43]})


def test_metrics_are_logged_with_exact_names_and_values():
    logged = {}
    (reward,) = build_reward_funcs(RewardConfig(mode="dual"))
    batch = _batch(
        [RIGHT, WRONG, UNCLOSED, RIGHT], [300, 540, 1000, 2000], [300, 600, 900, 2500], ["max", "max", "exact", "exact"]
    )
    reward(**batch, log_metric=lambda name, value: logged.__setitem__(name, value))
    rel = [0.0, 0.1, 100 / 900, 0.2]
    assert logged == pytest.approx(
        {
            "lcpo/accuracy": 0.5,
            "lcpo/rel_len_error": sum(rel) / 4,
            "lcpo/within_10pct": 0.5,
            "lcpo/over_budget": 0.0,  # only the two max rows, both within budget
            "lcpo/mean_tokens": 960.0,
            "lcpo/rel_len_error/<512": 0.0,
            "lcpo/rel_len_error/512-1024": (0.1 + 100 / 900) / 2,
            "lcpo/rel_len_error/>2048": 0.2,
            "lcpo/target_len_corr": statistics.correlation([300, 600, 900, 2500], [300, 540, 1000, 2000]),
        }
    )
    assert length_metrics([10, 20, 40], [10, 20, 40], ["exact"] * 3, [True] * 3)["lcpo/target_len_corr"] == 1.0
    assert length_metrics([40, 20, 10], [10, 20, 40], ["exact"] * 3, [True] * 3)["lcpo/target_len_corr"] < -0.9
    assert "lcpo/target_len_corr" not in length_metrics([10, 20], [30, 30], ["exact"] * 2, [True] * 2)
    # no max rows: no over_budget; the 1024-2048 bucket appears only with rows in it
    metrics = length_metrics([1500, 100], [1200, 100], ["exact", "exact"], [True, True])
    assert "lcpo/over_budget" not in metrics and metrics["lcpo/rel_len_error/1024-2048"] == pytest.approx(0.25)
    assert length_metrics([120], [100], ["max"], [False])["lcpo/over_budget"] == 1.0
    assert reward(**batch) == reward(**batch, log_metric=None)  # logging is optional


# ---- a real GRPOTrainer run ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_grpo_trainer_logs_length_metrics(tiny_model_dir, tmp_path):
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    # one bucket per target; the max-mode rows are the 512-1024 and >2048 ones
    targets = {100: ("exact", "<512"), 700: ("max", "512-1024"), 1500: ("exact", "1024-2048"), 3000: ("max", ">2048")}
    rows = [(t, m) for t, (m, _) in targets.items()] * 2
    data = Dataset.from_list(
        [
            {"prompt": [{"role": "user", "content": f"What is {i} + {i}? Think for {t} tokens."}], "answer": str(2 * i)}
            | {"target_tokens": t, "budget_mode": m}
            for i, (t, m) in enumerate(rows)
        ]
    )
    args = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=16,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=str(tiny_model_dir),
        reward_funcs=build_reward_funcs(RewardConfig(mode="dual", format_weight=0.1)),
        args=args,
        train_dataset=data,
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "lcpo/rel_len_error" in entry]
    assert len(logs) == 2
    for entry in logs:  # 4 completions per step = one prompt, so one target per logged step
        assert entry["lcpo/mean_tokens"] == 16  # the random tiny model never stops: every completion is cut at 16
        assert entry["lcpo/accuracy"] == 0.0 and entry["lcpo/within_10pct"] == 0.0  # never closes </think>
        assert "rewards/lcpo_dual/mean" in entry and "rewards/format/mean" in entry
        (bucket,) = [key for key in entry if key.startswith("lcpo/rel_len_error/")]
        (target,) = [t for t, (_, b) in targets.items() if bucket == f"lcpo/rel_len_error/{b}"]
        assert entry["lcpo/rel_len_error"] == entry[bucket] == pytest.approx(abs(16 - target) / target, abs=1e-4)
        assert ("lcpo/over_budget" in entry) == (targets[target][0] == "max")
        assert entry.get("lcpo/over_budget", 0.0) == 0.0  # 16 tokens never exceed these budgets


def test_number_grader_takes_the_last_number_or_the_box():
    assert is_correct("8 + 8 = 16\n\nSo the answer is 16.", "16", "number", require_think_close=False)
    assert not is_correct("2 + 6 = 10", "8", "number", require_think_close=False)
    assert is_correct("first 3, then \\boxed{12} and 5", "12", "number", require_think_close=False)
    assert not is_correct("no digits here", "3", "number", require_think_close=False)
    assert not is_correct("8 + 8 = 16", "16", "number")  # no </think>: wrong unless the caller says otherwise
    assert is_correct("<think>hmm 7</think> it is -4", "-4", "number")
