"""The progress of a long stage: tqdm's bar (count, rate, ETA) on a terminal, one line when it ends elsewhere.

A :class:`Bar` draws on stderr only when progress is on and stderr is a terminal; otherwise (``--no-progress``,
which every long command maps onto its config, or output to a file or pipe) it prints one line to stderr when it
closes: ``train: 15 steps in 14.5 s``. :func:`follow_steps` puts a transformers Trainer's optimizer steps on one
in place of the trainer's own bar and printed log dictionaries. Imports no other l1lite module; transformers only
inside :func:`follow_steps`.
"""

from __future__ import annotations

import io
import sys
from typing import Any

from tqdm import tqdm


class _Nowhere(io.TextIOBase):
    """Where a bar that is not drawn writes."""

    def write(self, text: str) -> int:
        return len(text)


class Bar(tqdm):
    """A tqdm bar drawn only when ``progress`` is on and stderr is a terminal; else one line when it closes.

    Either way it counts, times and takes a postfix as tqdm does (vLLM's ``use_tqdm`` can drive it), and the line
    ends with the postfix: ``eval: 48 samples in 6.0 s (8.0 samples/s)``. A stage left by an exception prints no line.

    Args:
        desc: the stage's name.
        total: the units the stage will count (None: unknown; it may grow).
        unit: what it counts, singular.
        progress: draw the bar (on a terminal).
        kwargs: more tqdm arguments (``initial``: units already done, not counted in the line).
    """

    def __init__(
        self, desc: str, total: float | None = None, unit: str = "it", progress: bool = True, **kwargs: Any
    ) -> None:
        self.line = not (progress and sys.stderr.isatty())
        where = {"file": _Nowhere()} if self.line else {"dynamic_ncols": True}
        super().__init__(total=total, desc=desc, unit=unit, **where, **kwargs)
        self.first = self.n

    def summary(self) -> str:
        """``DESC: N UNITs in S s (POSTFIX)``: the units counted since it opened."""
        n = self.n - self.first
        line = f"{self.desc}: {n} {self.unit}{'' if n == 1 else 's'} in {self.format_dict['elapsed']:.1f} s"
        return line + (f" ({self.postfix})" if self.postfix else "")

    def close(self) -> None:
        if self.line and not self.disable:  # tqdm sets disable once closed
            print(self.summary(), file=sys.stderr, flush=True)
        super().close()

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is not None:
            self.line = False
        super().__exit__(kind, value, traceback)


def follow_steps(trainer: Any, desc: str) -> None:
    """Show ``trainer``'s optimizer steps on a :class:`Bar` (not drawn when ``args.disable_tqdm``), in place of its
    own bar and of the log dictionaries it prints; the logs still reach ``log_history`` and ``report_to``.

    Args:
        trainer (`transformers.Trainer`): a Trainer (TRL's included) before ``train()``.
        desc (`str`): the stage's name.
    """
    from transformers import PrinterCallback, ProgressCallback, TrainerCallback

    class Steps(TrainerCallback):
        bar: Bar | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                progress = not args.disable_tqdm
                self.bar = Bar(desc, state.max_steps, "step", progress, initial=state.global_step)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(Steps())
