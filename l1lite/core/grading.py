"""Answer extraction and grading of R1-style completions (thinking, ``</think>``, then a boxed answer).

Grading is bounded: a fast exact path settles plain numbers and identical strings; everything else
goes to math-verify in a persistent worker process that is killed and restarted when it overruns
the timeout, so an exponent tower or a huge expression costs at most the timeout, from any thread.

Owns the graders (:data:`GRADERS` and ``package.module:function``), their check and answer extraction.
Imports only config and r1 from l1lite; must not import rewards, training, inference or evaluation (they
import it).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

from l1lite.core.config import ConfigError
from l1lite.core.r1 import split_thinking

GRADERS = ("math", "choice", "exact", "number")
WORKER_START_TIMEOUT_S = 60.0


def load_callable(spec: str, what: str) -> Callable:
    """Import ``package.module:function``; a :class:`ConfigError` naming ``what`` if that fails."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what} '{spec}' must look like package.module:function")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"{what} '{spec}' cannot be imported ({type(e).__name__}: {e})") from None
    if not callable(fn):
        raise ConfigError(f"{what} '{spec}' is not callable")
    return fn


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox``), nested braces handled; None if absent or unclosed."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = start + (6 if text.startswith("\\boxed", start) else 5)
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text):
        return None
    if text[i] != "{":  # \boxed 5
        m = re.match(r"[^\s$]+", text[i:])
        return m.group(0) if m else None
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def count_boxed(text: str) -> int:
    """Number of ``\\boxed`` / ``\\fbox`` occurrences in ``text``."""
    return text.count("\\boxed") + text.count("\\fbox")


_NOISE = re.compile(r"\\left|\\right|\\[!,;: ]|\\displaystyle|\^\{?\\circ\}?|\\circ|\\%|%|\\\$|\$|~|\s+")
_NUMBER = re.compile(r"-?(\d{1,40}|\d{1,3}(,\d{3}){1,12})")
_DECIMAL = re.compile(r"-?(\d{0,40}\.\d{1,40}|\d{1,40}\.)")
_UNIT = re.compile(r"(?<=\d)\\(?:text|mbox|mathrm)\{[^{}]*\}$")  # 50\text{km/h}: a number with a unit
_ASSIGN = re.compile(r"^[A-Za-z]=")  # x=7
_FRAC = re.compile(r"(-?)(?:\\frac\{(-?\d{1,40})\}\{(-?\d{1,40})\}|\\frac(\d)(\d)|(\d{1,40})/(\d{1,40}))")


def _normalize_math(s: str) -> str:
    s = _NOISE.sub("", s).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return s.rstrip(".")


def _as_number(s: str) -> tuple[Fraction, bool] | None:
    """(value, is_decimal) for an integer, decimal or integer fraction (unit text dropped); None otherwise."""
    s = _UNIT.sub("", s)
    if _NUMBER.fullmatch(s):
        return Fraction(s.replace(",", "")), False
    if _DECIMAL.fullmatch(s):
        return Fraction(s), True
    m = _FRAC.fullmatch(s)
    if m:
        num, den = (m.group(2), m.group(3)) if m.group(2) else (m.group(4), m.group(5)) if m.group(4) else m.group(6, 7)
        if int(den) == 0:
            return None
        value = Fraction(int(num), int(den))
        return (-value if m.group(1) else value), False
    return None


def fast_verdict(gold: str, pred: str) -> bool | None:
    """True/False when decidable without math-verify (same string, or two exact numbers); else None.

    The prediction may be a plain assignment (``x = 7``); either side may carry a ``\\text{}`` unit.
    """
    g, p = _normalize_math(gold), _normalize_math(pred)
    if g == p:
        return True
    gn, pn = _as_number(g), _as_number(_ASSIGN.sub("", p))
    if gn is None or pn is None:
        return None
    if gn[0] == pn[0]:
        return True
    return False if not (gn[1] or pn[1]) else None  # decimals may match by rounding: let math-verify decide


# Workers are started from one long-lived thread: on Linux they die with the thread that started them.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="l1lite-grading-spawn")


class _WorkerProcess:
    """One ``python -m l1lite.core.grading`` process answering a JSON line [gold, pred] with 1 or 0."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        self.proc = _SPAWNER.submit(
            subprocess.Popen,
            [sys.executable, "-u", "-m", "l1lite.core.grading"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        ).result()
        self.ready = False
        self._buf = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def readline(self, deadline: float) -> bytes | None:
        """The next line, or None at ``deadline``."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("math-verify worker exited unexpectedly")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def wait_ready(self) -> None:
        if not self.ready:
            line = self.readline(time.monotonic() + WORKER_START_TIMEOUT_S)
            if line != b"ready":
                self.kill()
                raise RuntimeError(f"math-verify worker failed to start: {(line or b'no reply').decode()}")
            self.ready = True

    def ask(self, gold: str, pred: str, timeout_s: float) -> bytes | None:
        self.proc.stdin.write(json.dumps([gold, pred]).encode() + b"\n")
        self.proc.stdin.flush()
        return self.readline(time.monotonic() + timeout_s)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


class MathVerifyWorker:
    """Persistent math-verify processes: an active one and a warm spare that replaces it when it overruns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: _WorkerProcess | None = None
        self._spare: _WorkerProcess | None = None

    def close(self) -> None:
        """Kill both processes (at exit: a worker may be busy on a hanging input)."""
        for w in (self._active, self._spare):
            if w is not None:
                w.kill()
        self._active = self._spare = None

    def verify(self, gold: str, pred: str, timeout_s: float) -> bool:
        """math-verify ``gold`` against ``pred`` (both LaTeX answers); False on timeout or error."""
        with self._lock:
            if self._active is None or not self._active.alive():
                self._active, self._spare = self._spare or _WorkerProcess(), None
            if self._spare is None or not self._spare.alive():
                self._spare = _WorkerProcess()
            self._active.wait_ready()
            line = self._active.ask(gold, pred, timeout_s)
            if line is None:  # overran: kill it; the warm spare takes over, a new spare warms up
                self._active.kill()
                self._active, self._spare = self._spare, _WorkerProcess()
            return line == b"1"


_WORKER = MathVerifyWorker()
atexit.register(_WORKER.close)


@lru_cache(maxsize=65536)
def verify_math(gold: str, pred: str, timeout_s: float = 2.0) -> bool:
    """Whether boxed-answer ``pred`` equals ``gold`` mathematically (fast path, then math-verify, bounded)."""
    verdict = fast_verdict(gold, pred)
    return _WORKER.verify(gold, pred, timeout_s) if verdict is None else verdict


def _serve() -> None:
    """Worker loop: read JSON [gold, pred] lines, answer 1 or 0 per line (signal timeouts disabled)."""
    import logging

    logging.disable(logging.WARNING)
    if sys.platform.startswith("linux"):  # die with the parent even while stuck in C code (PR_SET_PDEATHSIG)
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    else:  # elsewhere: stop once the parent is gone (checked while Python code runs)
        parent = os.getppid()

        def orphan_watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(0)

        threading.Thread(target=orphan_watch, daemon=True).start()
    try:
        from math_verify import parse, verify

        def check(gold: str, pred: str) -> bool:
            g = parse(f"\\boxed{{{gold}}}", parsing_timeout=None)
            p = parse(f"\\boxed{{{pred}}}", parsing_timeout=None)
            return bool(g and p and verify(g, p, timeout_seconds=None))

        check("\\frac{1}{2}", "0.5")  # warm up the LaTeX parser before reporting ready
    except Exception as e:  # noqa: BLE001 - reported to the parent as the failure reason
        print(f"{type(e).__name__}: {e}", flush=True)
        return
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            ok = check(*json.loads(line))
        except Exception:  # noqa: BLE001 - an unparsable answer is a wrong answer
            ok = False
        sys.stdout.write("1\n" if ok else "0\n")
        sys.stdout.flush()


_ANY_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")  # the number grader's candidates
_LETTER = re.compile(r"(?<![A-Za-z\\])([A-J])(?![A-Za-z])")


def _choice_letter(text: str) -> str | None:
    letters = _LETTER.findall(text)
    return letters[-1] if letters else None


def _normalize_text(s: str) -> str:
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s.strip().strip("$"))
    return " ".join(s.split()).rstrip(".").casefold()


def is_correct(
    completion: str,
    gold: str,
    grader: str = "math",
    *,
    require_think_close: bool = True,
    timeout_s: float = 2.0,
    max_answer_chars: int = 2000,
) -> bool:
    """Grade one completion against ``gold``.

    ``math``: last ``\\boxed{}`` after the first ``</think>``, compared with math-verify; ``choice``: the
    final A-J letter (boxed if there is a box); ``exact``: normalized string equality (boxed if boxed);
    ``number``: the last number written (in the box if there is one) equals ``gold`` exactly;
    ``package.module:function``: ``function(completion, gold) -> bool``. Without ``</think>`` the
    answer is wrong, unless ``require_think_close`` is False (then the whole text is the answer).
    Answers longer than ``max_answer_chars`` are wrong.

    Args:
        completion: the generated text (thinking, ``</think>``, answer).
        gold: the reference answer.
        grader: ``math``, ``choice``, ``exact``, ``number`` or ``package.module:function``.
        require_think_close: whether a completion that never closes its thinking is wrong.
        timeout_s: most seconds math-verify may spend on one answer.
        max_answer_chars: longest answer that is graded at all.
    """
    _, answer, closed = split_thinking(completion)
    if not closed:
        if require_think_close:
            return False
        answer = completion
    if grader not in GRADERS:
        return bool(load_callable(grader, "reward.grader")(completion, gold))
    boxed = extract_boxed(answer)
    if grader == "math":
        if not boxed or len(boxed) > max_answer_chars:
            return False
        return verify_math(str(gold), boxed, float(timeout_s))
    candidate = boxed if boxed is not None else answer
    if len(candidate) > max_answer_chars:
        return False
    if grader == "choice":
        letter = _choice_letter(candidate)
        return letter is not None and letter == _choice_letter(str(gold).upper())
    if grader == "number":
        numbers = _ANY_NUMBER.findall(candidate)
        return bool(numbers) and fast_verdict(str(gold), numbers[-1]) is True
    return _normalize_text(candidate) == _normalize_text(str(gold))


def check_grader(grader: str) -> None:
    """Raise :class:`ConfigError` unless ``grader`` is built in or an importable callable."""
    if grader not in GRADERS:
        load_callable(grader, "reward.grader")


if __name__ == "__main__":
    _serve()
