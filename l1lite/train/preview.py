"""``l1lite curriculum preview``: the targets a training config would schedule, per step range (and a plot).

Reads a config through :mod:`l1lite.core.config`, resolves TRL's batch arithmetic through :mod:`l1lite.train.run`
and draws from :mod:`l1lite.train.curriculum`; loads no model or data. Owns only the command and its plot; no
module imports it.
"""

from __future__ import annotations

from pathlib import Path

from l1lite.core.config import ConfigError, TrainConfig, load_config
from l1lite.core.files import OutputExistsError, atomic_path, check_output
from l1lite.train.curriculum import Curriculum
from l1lite.train.run import grpo_args
from l1lite.train.schedule import prompts_per_step

MAX_STEPS = 100_000  # a preview draws every prompt of every step: beyond this it runs for minutes


def add_arguments(parser) -> None:
    """CLI: ``l1lite curriculum preview --config FILE [--set k=v ...] [--steps N] [--png OUT.png]``."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("preview", help="print (and plot) the target distribution per step range")
    p.add_argument("--config", required=True, help="training config: a YAML path or a shipped preset name")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--steps", type=int, help="steps to preview (default: trainer.max_steps, else 100)")
    p.add_argument("--buckets", type=int, default=10, help="rows in the table")
    p.add_argument("--png", help="also plot targets per step to this PNG")
    p.add_argument("--force", action="store_true", help="overwrite an existing PNG")


def _plot(drawn: list[tuple[int, int, str]], out: str, force: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for mode, color in (("exact", "tab:blue"), ("max", "tab:orange")):
        points = [(s, t) for s, t, m in drawn if m == mode]
        if points:
            ax.scatter(*zip(*points, strict=True), s=6, alpha=0.5, color=color, label=mode)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("target tokens")
    ax.set_title("curriculum targets")
    ax.legend()
    with atomic_path(out, force) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def run(args) -> int:
    """CLI entry point."""
    if args.steps is not None and not 1 <= args.steps <= MAX_STEPS:
        raise ConfigError(f"--steps must be between 1 and {MAX_STEPS}, got {args.steps}")
    if args.buckets < 1:
        raise ConfigError(f"--buckets must be >= 1, got {args.buckets}")
    if args.png:
        check_output(args.png, "--png", folder=False)
        if not args.force and Path(args.png).exists():
            raise OutputExistsError(f"{args.png} exists (use --force to overwrite)")
    cfg = load_config(TrainConfig, args.config, args.set)
    trainer = grpo_args(cfg, cuda=False)
    curriculum = Curriculum(cfg.curriculum, prompts_per_step(trainer))
    steps = args.steps or (trainer.max_steps if trainer.max_steps > 0 else 100)
    if steps > MAX_STEPS:
        raise ConfigError(f"trainer.max_steps {steps}: give --steps (at most {MAX_STEPS}) to preview part of it")
    print(f"scheduler {cfg.curriculum.scheduler}, {curriculum.prompts_per_step} prompts/step, {steps} steps")
    print(f"{'steps':>13}  {'min':>6}  {'median':>7}  {'max':>6}  {'max-mode':>8}")
    for row in curriculum.preview(steps, args.buckets):
        span = "{}-{}".format(*row["steps"])
        print(f"{span:>13}  {row['min']:>6}  {row['median']:>7.0f}  {row['max']:>6}  {row['max_share']:>8.0%}")
    if args.png:
        _plot(curriculum.samples(steps), args.png, args.force)
        print(f"plot written to {args.png}")
    return 0
