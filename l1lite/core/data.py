"""Load math / multiple-choice problems into one shape: string columns ``id``, ``question``, ``answer``.

Sources: a hub id, a local .jsonl/.json/.parquet/.csv file, or ``l1lite:math-small`` (shipped in
``l1lite.assets``). Owns the dataset presets (:data:`PRESETS`, each mapping a dataset's columns), the data
section's checks (:func:`check_data`, loading nothing, and :func:`check_available`, asking the hub about a
hub id) and the prompt-length filter. Imports config, grading, models (the hub check), prompts and r1; must
not import TRL, training, inference or evaluation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import datasets

from l1lite.core import models
from l1lite.core.config import ConfigError, CurriculumConfig, DataConfig, PromptConfig, utf8_line
from l1lite.core.grading import extract_boxed
from l1lite.core.prompts import MODES, budget_sentence, render
from l1lite.core.r1 import count_tokens

log = logging.getLogger(__name__)

BUILTIN = {"math-small": "math_small.jsonl"}  # l1lite:NAME -> file in l1lite/assets
LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
PRESETS = ("deepscaler", "gsm8k", "math", "math500", "aime", "choice")
HUB_HINTS = ("deepscaler", "gsm8k", "aime", "math")  # substrings of a hub id, checked in this order
ID_COLUMNS = ("id", "ID", "unique_id")
LETTERS = "ABCDEFGHIJ"


def _local_file(spec: str) -> Path:
    """The file behind ``l1lite:NAME`` or a local path."""
    if spec.startswith("l1lite:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN:
            raise ConfigError(f"unknown built-in dataset '{spec}' (valid: {', '.join('l1lite:' + n for n in BUILTIN)})")
        return Path(str(resources.files("l1lite.assets").joinpath(BUILTIN[name])))
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ConfigError(f"dataset file not found: {path}")
    if path.stat().st_size == 0:
        raise ConfigError(f"{path}: empty dataset file (0 bytes)")
    return path


TEXT_FORMATS = (".jsonl", ".json", ".csv")  # read as UTF-8 text: checked line by line first


def _bad_line(path: Path) -> str | None:
    """``PATH:N: ...`` for the first line of a text data file that is not UTF-8 or, in JSON lines, not a JSON
    object; else None."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = utf8_line(raw, f"{path}:{n}")
            except ConfigError as e:
                return str(e)
            if path.suffix.lower() != ".jsonl" or not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                return f"{path}:{n}: not valid JSON ({e.msg} at column {e.colno})"
            if not isinstance(row, dict):
                return f"{path}:{n}: not a JSON object"
    return None


def _row_lines(path: Path) -> list[int] | None:
    """The line number of each row of a JSON-lines file (blank lines hold none); None for other files."""
    if path.suffix.lower() != ".jsonl":
        return None
    with path.open("rb") as f:
        return [n for n, line in enumerate(f, 1) if line.strip()]


def _is_local(spec: str) -> bool:
    return spec.startswith("l1lite:") or Path(spec).suffix.lower() in LOCAL_FORMATS or Path(spec).is_file()


def check_data(cfg: DataConfig) -> None:
    """Raise :class:`ConfigError` for a data section no load could use (preset, local file, limits).

    A local file must exist and not be empty; a JSON-lines file's lines are parsed, so a bad one is named by its
    line number (datasets would give a character offset), and a text file must be UTF-8 (named by its line).
    Nothing is loaded.
    """
    if cfg.preset is not None and cfg.preset not in PRESETS:
        raise ConfigError(f"unknown data.preset '{cfg.preset}' (valid: {', '.join(PRESETS)})")
    if _is_local(cfg.dataset):
        path = _local_file(cfg.dataset)
        if path.suffix.lower() in TEXT_FORMATS and (bad := _bad_line(path)):
            raise ConfigError(bad)
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError(f"data.limit must be >= 1 (or null for all problems), got {cfg.limit}")
    if cfg.max_prompt_tokens < 1:
        raise ConfigError(f"data.max_prompt_tokens must be >= 1, got {cfg.max_prompt_tokens}")


def check_available(cfg: DataConfig) -> None:
    """Raise :class:`ConfigError` unless the dataset is a local file, in the hub cache, or on a reachable hub."""
    if not _is_local(cfg.dataset):
        models.check_available(cfg.dataset, "dataset", repo_type="dataset")


def load_source(cfg: DataConfig) -> datasets.Dataset:
    """The raw dataset named by ``cfg.dataset`` (for local files ``cfg.split`` is ignored)."""
    if _is_local(cfg.dataset):
        path = _local_file(cfg.dataset)
        fmt = LOCAL_FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise ConfigError(f"{path}: unsupported file type (use {', '.join(LOCAL_FORMATS)})")
        try:
            return datasets.load_dataset(fmt, data_files=str(path), split="train")
        except (ValueError, OSError, datasets.exceptions.DatasetGenerationError) as e:
            raise ConfigError(f"{path}: cannot read as {fmt} ({str(e).splitlines()[0]})") from None
    try:
        return datasets.load_dataset(cfg.dataset, cfg.config_name, split=cfg.split)
    except (
        ValueError,
        OSError,
        datasets.exceptions.DatasetNotFoundError,
        datasets.exceptions.DatasetGenerationError,  # a local folder of files it cannot read (or of mixed columns)
    ) as e:
        cause = e.__cause__ if isinstance(e, datasets.exceptions.DatasetGenerationError) and e.__cause__ else e
        reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        raise ConfigError(f"cannot load dataset '{cfg.dataset}': {reason}") from None


def guess_preset(spec: str, columns: list[str]) -> str:
    """Preset from the hub id, else from the columns."""
    if not _is_local(spec):
        for hint in HUB_HINTS:
            if hint in spec.lower():
                return hint
    cols = set(columns)
    if "choices" in cols or {"A", "B", "C", "D"} <= cols:
        return "choice"
    if "question" in cols and "answer" in cols:
        return "gsm8k"
    if cols & {"problem", "Problem"} and cols & {"answer", "Answer"}:
        return "aime" if "Problem" in cols else "deepscaler"
    if "problem" in cols and "solution" in cols:
        return "math"
    raise ConfigError(
        f"{spec}: cannot guess the preset from columns {sorted(cols)}; set data.preset "
        f"({', '.join(PRESETS)}) or data.question_field/data.answer_field"
    )


def _gsm8k_answer(text: str) -> str:
    return text.rsplit("####", 1)[-1].strip().replace(",", "")


def _choice_letter(value: Any, options: list[str], labels: list[str] | None, where: str) -> str:
    """The option letter for an answer given as a letter, a 0-based index, or one of ``labels``."""
    if labels and str(value) in labels:
        return LETTERS[labels.index(str(value))]
    if isinstance(value, int) and not isinstance(value, bool):
        index = value
    else:
        text = str(value).strip().strip("()").upper()
        if len(text) == 1 and text in LETTERS[: len(options)]:
            return text
        index = int(text) if text.isdigit() else -1
    if 0 <= index < len(options):
        return LETTERS[index]
    raise ConfigError(f"{where}: answer {value!r} is neither an option letter nor an option index")


def _options(row: dict[str, Any], where: str) -> tuple[list[str], list[str] | None]:
    """The options and, for ARC-style ``{"text": [...], "label": [...]}`` choices, their labels."""
    if "choices" not in row:
        return [str(row[letter]) for letter in LETTERS if row.get(letter) is not None], None
    choices, labels = row["choices"], None
    if isinstance(choices, dict):
        choices, labels = choices.get("text"), [str(x) for x in choices.get("label") or []]
    if not isinstance(choices, list) or not choices:
        raise ConfigError(f"{where}: column 'choices' must be a non-empty list, got {row['choices']!r}")
    return [str(c) for c in choices], labels


def _require(columns: list[str], wanted: str | tuple[str, ...], where: str) -> str:
    """The first of ``wanted`` present in ``columns``, else a ConfigError naming it."""
    options = (wanted,) if isinstance(wanted, str) else wanted
    for name in options:
        if name in columns:
            return name
    raise ConfigError(f"{where}: column '{options[0]}' not found (columns: {', '.join(columns)})")


Extractor = Callable[[dict[str, Any]], tuple[str, str | None]]


def _extractor(preset: str, cfg: DataConfig, columns: list[str], where: str) -> Extractor:
    """Row -> (question, answer or None to drop) for ``preset`` (checked or guessed), honouring explicit fields."""
    q_default = {"gsm8k": "question", "choice": "question", "aime": ("problem", "Problem")}.get(preset, "problem")
    q_col = _require(columns, cfg.question_field or q_default, where)
    if cfg.answer_field:
        a_col = _require(columns, cfg.answer_field, where)
    elif preset in ("math", "math500") and "answer" not in columns:
        a_col = _require(columns, "solution", where)
    else:
        a_default = ("answer", "Answer", "answerKey") if preset in ("aime", "choice") else "answer"
        a_col = _require(columns, a_default, where)

    def answered(extract: Extractor) -> Extractor:  # a missing or null question or answer: the row is dropped
        return lambda row: (None, None) if row[q_col] is None or row[a_col] is None else extract(row)

    if preset == "choice":
        if "choices" not in columns:
            _require(columns, "A", where)

        def choice(row: dict[str, Any]) -> tuple[str, str | None]:
            options, labels = _options(row, where)
            lines = [f"{LETTERS[i]}. {opt}" for i, opt in enumerate(options)]
            return f"{row[q_col]}\n\n" + "\n".join(lines), _choice_letter(row[a_col], options, labels, where)

        return answered(choice)
    if preset == "gsm8k":
        return answered(lambda row: (row[q_col], _gsm8k_answer(str(row[a_col]))))
    if preset in ("math", "math500") and a_col == "solution":
        return answered(lambda row: (row[q_col], extract_boxed(str(row[a_col]))))
    return answered(lambda row: (row[q_col], str(row[a_col]).strip()))


def _prompt_lengths(tokenizer, questions: list[str], budget: int, prompt_cfg: PromptConfig) -> list[int]:
    """Token count of each fully rendered chat prompt with the longer budget sentence."""
    mode = max(MODES, key=lambda m: len(budget_sentence(budget, m, prompt_cfg)))
    texts = [render(tokenizer, q, budget, mode, prompt_cfg) for q in questions]
    return count_tokens(tokenizer, texts)


def load_problems(
    cfg: DataConfig,
    tokenizer=None,
    prompt_cfg: PromptConfig | None = None,
    max_budget: int | None = None,
) -> datasets.Dataset:
    """Problems as string columns ``id``, ``question``, ``answer`` (multiple choice: options in the question).

    With a tokenizer, prompts longer than ``cfg.max_prompt_tokens`` (rendered through the chat template
    with the largest budget, default the curriculum's ``hi``) are dropped and counted in the log.
    ``cfg.limit`` keeps the first N problems that pass.

    Args:
        cfg: the source, preset, column names, split, limit and prompt length cap.
        tokenizer: the model's HF tokenizer; without one no prompt is dropped for its length.
        prompt_cfg: budget prompt wording used to measure the prompts (`None`: the paper's).
        max_budget: the budget written into the measured prompts (`None`: ``CurriculumConfig().hi``).
    """
    check_data(cfg)
    raw = load_source(cfg)
    columns = list(raw.column_names)
    where = cfg.dataset
    preset = cfg.preset or (
        "deepscaler" if cfg.question_field and cfg.answer_field else guess_preset(cfg.dataset, columns)
    )
    extract = _extractor(preset, cfg, columns, where)
    id_col = next((c for c in ID_COLUMNS if c in columns), None)
    stem = Path(where).stem if _is_local(where) else where.rsplit("/", 1)[-1]
    prompt_cfg = prompt_cfg or PromptConfig()
    budget = max_budget or CurriculumConfig().hi

    out: dict[str, list[str]] = {"id": [], "question": [], "answer": []}
    no_answer: list[int] = []  # row numbers (from 0)
    too_long = 0
    chunk = 512
    for begin in range(0, len(raw), chunk):
        rows = raw.select(range(begin, min(begin + chunk, len(raw)))).to_list()
        picked = []
        for offset, row in enumerate(rows):
            question, answer = extract(row)
            if not question or not answer:
                no_answer.append(begin + offset)
                continue
            ident = str(row[id_col]) if id_col else f"{stem}-{begin + offset}"
            picked.append((ident, str(question), answer))
        if tokenizer is not None and picked:
            lengths = _prompt_lengths(tokenizer, [q for _, q, _ in picked], budget, prompt_cfg)
            too_long += sum(n > cfg.max_prompt_tokens for n in lengths)
            picked = [p for p, n in zip(picked, lengths, strict=True) if n <= cfg.max_prompt_tokens]
        for ident, question, answer in picked:
            out["id"].append(ident)
            out["question"].append(question)
            out["answer"].append(answer)
        if cfg.limit is not None and len(out["id"]) >= cfg.limit:
            break
    if no_answer:
        lines = _row_lines(_local_file(where)) if _is_local(where) else None
        kind, numbers = ("line", lines) if lines and len(lines) > no_answer[-1] else ("row", None)
        named = ", ".join(str(numbers[i] if numbers else i + 1) for i in no_answer[:5])
        more = f" and {len(no_answer) - 5} more" if len(no_answer) > 5 else ""
        s = "s" if len(no_answer) > 1 else ""
        log.warning(f"{where}: skipped {len(no_answer)} row{s} without a question or answer ({kind}{s} {named}{more})")
    if too_long:
        log.warning("%s: dropped %d prompts longer than %d tokens", where, too_long, cfg.max_prompt_tokens)
    if cfg.limit is not None:
        out = {k: v[: cfg.limit] for k, v in out.items()}
    if not out["id"]:
        raise ConfigError(f"{where}: no usable problems (preset {preset})")
    return datasets.Dataset.from_dict(out)
