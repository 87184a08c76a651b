import json
from collections import defaultdict

import pytest
import yaml
from peft import LoraConfig as PeftLoraConfig
from transformers import AutoTokenizer, TrainerControl, TrainerState, TrainingArguments
from trl import GRPOConfig, GRPOTrainer

from l1lite.cli import main
from l1lite.core.config import ConfigError, CurriculumConfig, DataConfig, PromptConfig
from l1lite.core.data import load_problems
from l1lite.core.prompts import budget_sentence, user_message
from l1lite.train.curriculum import METRIC, STATE_FILE, Curriculum, load_curriculum_state, validate
from l1lite.train.schedule import CurriculumCallback, prompts_per_step, schedule_dataset

ADAPTIVE = CurriculumConfig(scheduler="adaptive", lo=100, hi=4000, natural=1000, widen=0.5, threshold=0.2, window=2)


@pytest.fixture(scope="module")
def problems():
    return load_problems(DataConfig())


def test_uniform_is_a_seeded_function_of_the_slot():
    cur = Curriculum(CurriculumConfig(lo=100, hi=4000, seed=3), prompts_per_step=8)
    drawn = [cur.target(s) for s in range(2000)]
    targets = [t for t, _ in drawn]
    assert all(100 <= t <= 4000 for t in targets) and min(targets) < 200 and max(targets) > 3900
    assert {m for _, m in drawn} == {"exact"}
    assert [cur.target(s) for s in range(2000)] == drawn  # repeated fetches agree
    assert [Curriculum(CurriculumConfig(lo=100, hi=4000, seed=3), 8).target(s) for s in range(2000)] == drawn
    assert [Curriculum(CurriculumConfig(lo=100, hi=4000, seed=4), 8).target(s) for s in range(2000)] != drawn


def test_linear_moves_the_range():
    cfg = CurriculumConfig(scheduler="linear", start=[1000, 2000], end=[100, 500], steps=10)
    cur = Curriculum(cfg, prompts_per_step=4)
    assert cur.range_at(0) == (1000, 2000)
    assert cur.range_at(5) == (550, 1250)
    assert cur.range_at(10) == cur.range_at(50) == (100, 500)
    for slot in range(80):
        lo, hi = cur.range_at(slot // 4)
        assert lo <= cur.target(slot)[0] <= hi


def test_staged_ranges_switch_at_their_steps():
    cur = Curriculum(CurriculumConfig(scheduler="staged", stages=[[0, 1000, 2000], [10, 100, 500]]), 3)
    assert all(1000 <= cur.target(s)[0] <= 2000 for s in range(30))
    assert all(100 <= cur.target(s)[0] <= 500 for s in range(30, 90))


def test_max_ratio_and_its_stages():
    drawn = [Curriculum(CurriculumConfig(max_ratio=0.5), 4).target(s)[1] for s in range(4000)]
    assert 0.46 < drawn.count("max") / len(drawn) < 0.54
    cur = Curriculum(CurriculumConfig(max_ratio=1.0, max_ratio_stages=[[5, 0.0], [10, 1]]), 4)
    modes = [cur.target(s)[1] for s in range(60)]
    assert modes == ["max"] * 20 + ["exact"] * 20 + ["max"] * 20


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scheduler": "cosine"}, "unknown curriculum.scheduler 'cosine'"),
        ({"lo": 500, "hi": 100}, "need 1 <= lo <= hi"),
        ({"scheduler": "linear", "start": [1, 2, 3]}, "must be \\[lo, hi\\]"),
        ({"scheduler": "staged"}, "curriculum.stages must be"),
        ({"scheduler": "staged", "stages": [[0, 10, 20], [0, 1, 2]]}, "increasing from_step"),
        ({"scheduler": "adaptive", "widen": 1.5}, "0 < widen < 1"),
        ({"max_ratio": 2.0}, "max ratio must be in \\[0, 1\\]"),
    ],
)
def test_invalid_curriculum_is_a_config_error(changes, message):
    with pytest.raises(ConfigError, match=message):
        Curriculum(CurriculumConfig(**changes), 4)


def test_adaptive_widens_when_the_measured_error_falls_below_threshold():
    cur = Curriculum(ADAPTIVE, prompts_per_step=2)
    assert cur.range_at(0) == (500, 2000)  # [natural * widen, natural / widen]
    fetched = [cur.target(s) for s in range(4)]  # steps 0 and 1 handed out
    cur.observe(1, {METRIC: 0.5, "loss": 1.0})
    cur.observe(2, {"loss": 1.0})  # no metric: ignored
    cur.observe(2, {METRIC: 0.1})  # mean of the last window (0.5, 0.1) = 0.3: stays
    assert len(cur.stages) == 1
    cur.observe(3, {METRIC: 0.1})  # mean 0.1 < 0.2: widen, from the first step not handed out yet (2)
    assert cur.stages == [[0, 500, 2000], [3, 250, 4000]]
    assert [cur.target(s) for s in range(4)] == fetched  # handed-out slots keep their targets
    assert cur.range_at(2) == (500, 2000) and cur.range_at(3) == (250, 4000)
    cur.observe(3, {METRIC: 0.0})  # measured on step 2, before the new range started: ignored
    cur.observe(4, {METRIC: 0.0})
    assert len(cur.stages) == 2  # needs a full window measured in the new range
    cur.observe(5, {METRIC: 0.0})
    assert cur.stages[-1] == [5, 125, 4000]
    cur.target(40)  # hands out step 20
    for step in range(6, 12):
        cur.observe(step, {METRIC: 0.0})
    assert cur.stages[-1] == [21, 100, 4000]  # floor reached; nothing after it
    cur.observe(30, {METRIC: 0.0})
    cur.observe(31, {METRIC: 0.0})
    assert cur.stages[-1] == [21, 100, 4000] and len(cur.stages) == 4


def test_non_adaptive_schedulers_ignore_metrics():
    cur = Curriculum(CurriculumConfig(lo=10, hi=20), 2)
    before = [cur.target(s) for s in range(10)]
    for step in range(1, 10):
        cur.observe(step, {METRIC: 0.0})
    assert [cur.target(s) for s in range(10)] == before and cur.range_at(100) == (10, 20)


def _train_like(cur: Curriculum, steps: range, errors: dict[int, float]) -> dict[int, tuple[int, str]]:
    """Fetch each step's slots (plus the next step's, as a prefetching dataloader does), then log its error."""
    drawn = {}
    pps = cur.prompts_per_step
    for step in steps:
        for slot in range(step * pps, (step + 2) * pps):
            target = cur.target(slot)
            drawn.setdefault(slot, target)
            assert drawn[slot] == target
        cur.observe(step + 1, {METRIC: errors[step]})
    return {s: t for s, t in drawn.items() if s < steps.stop * pps}


@pytest.mark.parametrize("scheduler", ["uniform", "adaptive"])
def test_resume_draws_the_same_targets_as_an_uninterrupted_run(scheduler):
    cfg = CurriculumConfig(**{**vars(ADAPTIVE), "scheduler": scheduler, "max_ratio": 0.5})
    errors = {step: 0.5 if step % 7 < 3 else 0.05 for step in range(40)}
    uninterrupted = _train_like(Curriculum(cfg, 4), range(40), errors)
    first = Curriculum(cfg, 4)
    part = _train_like(first, range(17), errors)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = Curriculum(cfg, 4)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == first.state_dict()
    part.update(_train_like(resumed, range(17, 40), errors))
    assert part == uninterrupted
    if scheduler == "adaptive":
        assert len(resumed.stages) >= 4  # widened before and after the interruption
    with pytest.raises(ConfigError, match="curriculum state has seed=0, this run has 1"):
        Curriculum(CurriculumConfig(**{**vars(cfg), "seed": 1}), 4).load_state_dict(state)


def test_schedule_dataset_rows(problems):
    cfg = PromptConfig()
    cur = Curriculum(CurriculumConfig(max_ratio=0.5), prompts_per_step=5)
    ds = schedule_dataset(problems, cur, cfg, num_slots=150, seed=1)
    assert len(ds) == 150
    rows = [ds[i] for i in range(150)]
    by_id = {p["id"]: p for p in problems}
    for slot, row in enumerate(rows):
        assert row["slot"] == slot and (row["target_tokens"], row["budget_mode"]) == cur.target(slot)
        problem = by_id[row["id"]]
        content = user_message(problem["question"], row["target_tokens"], row["budget_mode"], cfg)
        assert row["prompt"] == [{"role": "user", "content": content}] and row["answer"] == problem["answer"]
    epochs = [[r["id"] for r in rows[i : i + 70]] for i in (0, 70)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == sorted(problems["id"])  # each epoch is a permutation
    assert epochs[0] != epochs[1] != problems["id"]
    again = schedule_dataset(problems, Curriculum(CurriculumConfig(max_ratio=0.5), 5), cfg, 150, seed=1)
    assert again[0:150] == ds[0:150]
    assert schedule_dataset(problems, cur, cfg, 150, seed=2)[0:70]["id"] != epochs[0]


def test_schedule_dataset_decides_adaptive_targets_at_fetch_time(problems):
    cur = Curriculum(ADAPTIVE, prompts_per_step=2)
    ds = schedule_dataset(problems, cur, PromptConfig(), num_slots=40, seed=0)
    early = ds[0:4]["target_tokens"]
    for step in range(1, 4):
        cur.observe(step, {METRIC: 0.0})
    assert cur.range_at(10) == (250, 4000)
    assert ds[0:4]["target_tokens"] == early
    late = ds[20:40]["target_tokens"]
    assert all(250 <= t <= 4000 for t in late) and not all(500 <= t <= 2000 for t in late)


def test_callback_feeds_logs_and_saves_state_in_the_checkpoint(tmp_path):
    cur = Curriculum(ADAPTIVE, prompts_per_step=2)
    callback = CurriculumCallback(cur)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    control = TrainerControl()
    for step in (1, 2):
        callback.on_log(args, TrainerState(global_step=step), control, logs={METRIC: 0.05})
    assert len(cur.stages) == 2
    assert load_curriculum_state(tmp_path / "checkpoint-2") is None
    callback.on_save(args, TrainerState(global_step=2), control)
    saved = load_curriculum_state(tmp_path / "checkpoint-2")
    assert saved == json.loads((tmp_path / "checkpoint-2" / STATE_FILE).read_text()) == cur.state_dict()
    restored = Curriculum(ADAPTIVE, prompts_per_step=2)
    restored.load_state_dict(saved)
    assert [restored.target(s) for s in range(50)] == [cur.target(s) for s in range(50)]


def _args(**trainer):
    from l1lite.core.config import TrainConfig, load_config
    from l1lite.train.run import grpo_args

    sets = [f"trainer.{k}={v}" for k, v in trainer.items()] + ["logging.report_to=[none]"]
    return grpo_args(load_config(TrainConfig, None, sets), cuda=False)


def test_prompts_per_step_from_resolved_grpo_config():
    assert prompts_per_step(_args()) == 1  # TRL defaults: batch 8, 8 generations
    assert prompts_per_step(_args(per_device_train_batch_size=4, num_generations=4, gradient_accumulation_steps=8)) == 8
    assert prompts_per_step(_args(per_device_train_batch_size=16, num_generations=8)) == 2
    two_rounds = _args(
        per_device_train_batch_size=4, num_generations=4, gradient_accumulation_steps=2, steps_per_generation=4
    )
    assert prompts_per_step(two_rounds) == 2  # 4 prompts per round, a round spans 2 optimizer steps
    with pytest.raises(ConfigError, match="whole number of prompts"):
        prompts_per_step(_args(per_device_train_batch_size=4, num_generations=4, num_iterations=2))


def test_cli_preview_table_and_plot(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    curriculum = {"scheduler": "staged", "stages": [[0, 1000, 2000], [10, 100, 500]], "max_ratio_stages": [[10, 1]]}
    trainer = {"per_device_train_batch_size": 8, "num_generations": 4, "max_steps": 20}
    config.write_text(yaml.safe_dump({"curriculum": curriculum, "trainer": trainer}))
    png = tmp_path / "targets.png"
    assert main(["curriculum", "preview", "--config", str(config), "--buckets", "2", "--png", str(png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "scheduler staged, 2 prompts/step, 20 steps"
    first, second = (line.split() for line in lines[2:4])
    assert first[0] == "0-9" and 1000 <= int(first[1]) <= int(first[3]) <= 2000 and first[4] == "0%"
    assert second[0] == "10-19" and 100 <= int(second[1]) <= int(second[3]) <= 500 and second[4] == "100%"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["curriculum", "preview", "--config", str(config), "--png", str(png)]) == 2  # refused
    assert "targets.png exists (use --force to overwrite)" in capsys.readouterr().err
    code = main(["curriculum", "preview", "--config", str(config), "--set", "curriculum.scheduler=cosine"])
    assert code == 2 and "unknown curriculum.scheduler 'cosine'" in capsys.readouterr().err


def _grpo_run(model_dir, out, curriculum, problems, max_steps, resume=None, **extra):
    """A real GRPOTrainer run on the tiny model; returns one record per completion."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dataset = schedule_dataset(problems, curriculum, PromptConfig(), num_slots=max_steps * 2, seed=0)
    records = []

    def record(prompts, completions, target_tokens, budget_mode, slot, trainer_state, log_metric, **kwargs):
        for prompt, target, mode, s in zip(prompts, target_tokens, budget_mode, slot, strict=True):
            text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            records.append(
                {"prompt": text, "target": target, "mode": mode, "slot": s, "step": trainer_state.global_step}
            )
        log_metric(METRIC, 0.0)
        return [0.0] * len(prompts)

    args = GRPOConfig(
        use_cpu=True,
        shuffle_dataset=False,
        max_steps=max_steps,
        per_device_train_batch_size=4,
        num_generations=4,
        gradient_accumulation_steps=2,  # 4 * 2 / 4 = 2 prompts per optimizer step
        max_completion_length=8,
        report_to=[],
        output_dir=str(out),
        logging_steps=1,
        disable_tqdm=True,
        **({"save_strategy": "no"} | extra),
    )
    trainer = GRPOTrainer(
        model=str(model_dir),
        reward_funcs=record,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=PeftLoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
        callbacks=[CurriculumCallback(curriculum)],
    )
    trainer.train(resume_from_checkpoint=resume)
    return records


@pytest.mark.slow
def test_grpo_completions_of_a_group_share_the_target_written_in_their_prompt(tiny_model_dir, problems, tmp_path):
    curriculum = Curriculum(CurriculumConfig(lo=50, hi=400), prompts_per_step=2)
    records = _grpo_run(tiny_model_dir, tmp_path, curriculum, problems, max_steps=3)
    groups = defaultdict(list)
    for r in records:
        groups[r["slot"]].append(r)
    assert sorted(groups) == list(range(6))  # 3 steps x 2 prompts, consumed in order
    for slot, group in groups.items():
        assert len(group) == 4 and len({(r["prompt"], r["target"], r["mode"]) for r in group}) == 1
        target, mode = curriculum.target(slot)
        assert (group[0]["target"], group[0]["mode"], mode) == (target, "exact", "exact")
        assert budget_sentence(target, "exact", PromptConfig()) in group[0]["prompt"]
        assert 50 <= group[0]["target"] <= 400 and group[0]["step"] == slot // 2


@pytest.mark.slow
def test_grpo_adaptive_widening_and_checkpoint_resume(tiny_model_dir, problems, tmp_path):
    cfg = CurriculumConfig(scheduler="adaptive", lo=20, hi=4000, natural=100, widen=0.5, threshold=0.5, window=1)
    full = Curriculum(cfg, prompts_per_step=2)
    records = _grpo_run(tiny_model_dir, tmp_path / "a", full, problems, 4, save_strategy="steps", save_steps=2)
    # the logged metric widened the range (50, 200) during the run, for steps the trainer then sampled
    assert full.range_at(0) == (50, 200) and full.range_at(3) != (50, 200)
    assert all(r["target"] == full.target(r["slot"])[0] for r in records)
    assert max(r["target"] for r in records) > 200
    checkpoint = tmp_path / "a" / "checkpoint-2"
    state = load_curriculum_state(checkpoint)
    assert state is not None
    resumed = Curriculum(cfg, prompts_per_step=2)
    resumed.load_state_dict(state)
    again = _grpo_run(tiny_model_dir, tmp_path / "a", resumed, problems, 4, resume=str(checkpoint), save_strategy="no")
    after = {(r["slot"], r["prompt"], r["target"]) for r in records if r["slot"] >= 4}
    assert len(again) == 16 and len(after) == 4  # steps 2 and 3: 2 prompts x 4 completions each
    assert {(r["slot"], r["prompt"], r["target"]) for r in again} == after
    assert resumed.stages == full.stages


def test_paired_targets_mirror_each_other_on_the_same_problem(problems):
    cur = Curriculum(CurriculumConfig(lo=16, hi=64, paired=True, max_ratio=0.5, seed=1), prompts_per_step=4)
    drawn = [cur.draw(s) for s in range(400)]
    for (t0, m0), (t1, m1) in zip(drawn[::2], drawn[1::2], strict=True):
        assert m0 == m1 and 16 <= t1 <= 64 and abs(t0 * t1 - 16 * 64) <= max(t0, t1) / 2
    assert min(t for t, _ in drawn) == 16 and max(t for t, _ in drawn) == 64
    ds = schedule_dataset(problems, cur, PromptConfig(), num_slots=40, seed=0)
    ids = ds[0:40]["id"]
    assert ids[::2] == ids[1::2] and len(set(ids[::2])) == 20
    with pytest.raises(ConfigError, match="even number of prompts"):
        Curriculum(CurriculumConfig(paired=True), prompts_per_step=3)


def test_choice_draws_only_the_given_targets_and_pairs_mirror_them():
    cur = Curriculum(CurriculumConfig(scheduler="choice", choices=[16, 32, 64], seed=3), 4)
    drawn = [cur.draw(s) for s in range(300)]
    assert {t for t, _ in drawn} == {16, 32, 64}
    paired = Curriculum(CurriculumConfig(scheduler="choice", choices=[16, 24, 64], paired=True), 2)
    pairs = [(paired.draw(s)[0], paired.draw(s + 1)[0]) for s in range(0, 200, 2)]
    assert set(pairs) == {(16, 64), (64, 16), (24, 64)}  # 24's mirror (42.7) snaps to the nearest by ratio
    for bad in ([], [16, 0], [16.5]):
        with pytest.raises(ConfigError, match="curriculum.choices"):
            validate(CurriculumConfig(scheduler="choice", choices=bad))
