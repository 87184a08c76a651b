"""Progress of a long stage (``l1lite.core.progress.Bar``): a bar on a terminal, else one line when it ends."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

STAGES = """
import sys
from l1lite.core.progress import Bar

with Bar("stage", 3, "step", progress=sys.argv[1] == "on") as bar:
    for _ in range(3):
        bar.update()
    bar.set_postfix_str("all done")
try:
    with Bar("broken", 2, "step", progress=sys.argv[1] == "on") as bar:
        bar.update()
        raise RuntimeError("stopped")
except RuntimeError:
    pass
"""
LINE = re.compile(r"^stage: 3 steps in \d+\.\d s \(all done\)$", re.M)


@pytest.mark.parametrize("progress", ["on", "off"])
def test_off_a_terminal_a_stage_is_one_line(progress):
    proc = subprocess.run([sys.executable, "-c", STAGES, progress], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert LINE.fullmatch(proc.stderr.strip()), proc.stderr  # nothing of the stage an exception left


def test_on_a_terminal_a_stage_is_a_bar_with_its_rate_unless_progress_is_off(on_terminal):
    drawn = on_terminal([sys.executable, "-c", STAGES, "on"], timeout=60).stderr
    assert re.search(r"stage: 100%\|█+\| 3/3 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+step/s, all done\]", drawn), drawn
    assert re.search(r"broken:  50%\|.*\| 1/2 \[\d\d:\d\d<\d\d:\d\d", drawn), drawn  # its ETA
    assert not LINE.search(drawn.replace("\r\n", "\n"))
    drawn = on_terminal([sys.executable, "-c", STAGES, "off"], timeout=60).stderr
    assert LINE.fullmatch(drawn.replace("\r\n", "\n").strip()), drawn
