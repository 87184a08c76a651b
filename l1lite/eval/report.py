"""Eval reports: report.md tables, PNG plots (matplotlib Agg) and plots.json, the data behind each plot.

One run or several side by side (``l1lite eval compare``); a series is a strategy of a run. Reads eval
folders through :mod:`l1lite.eval.results`; must not import :mod:`l1lite.eval.engine`, inference or training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from l1lite.core.config import ConfigError
from l1lite.core.files import atomic_path, check_output
from l1lite.eval.results import Run, load_run

PLOTS = {
    "accuracy": "accuracy.png",
    "length": "length.png",
    "length_error": "length_error.png",
    "length_hist": "length_hist.png",
    "tradeoff": "accuracy_vs_tokens.png",
}
COLUMNS = [  # (summary field, report.md header, format)
    ("accuracy", "accuracy", ".3f"),
    ("mean_tokens", "mean tokens", ".1f"),
    ("median_tokens", "median tokens", ".1f"),
    ("mean_thinking_tokens", "mean thinking", ".1f"),
    ("median_thinking_tokens", "median thinking", ".1f"),
    ("rel_error", "rel. error", ".3f"),
    ("rel_error_thinking", "rel. error (thinking)", ".3f"),
    ("within_20", "within 20%", ".3f"),
    ("over_budget", "over budget", ".3f"),
    ("over_budget_thinking", "over budget (thinking)", ".3f"),
    ("truncated", "truncated", ".3f"),
]
HIST_BINS = 20
REPORT_FILES = ("report.md", "plots.json", *PLOTS.values())  # a comparison folder: what --force may replace


def _series(runs: list[Run]) -> list[tuple[str, str, Run]]:
    """(series label, strategy, run) for every strategy of every run."""
    several = len(runs) > 1
    out = []
    for run in runs:
        label, summary, _ = run
        out += [(f"{label}: {s}" if several else s, s, run) for s in summary["run"]["strategies"]]
    return out


def plot_data(runs: list[Run]) -> dict[str, Any]:
    """The numbers each plot shows, by plot name (what plots.json holds)."""
    import numpy as np

    data: dict[str, Any] = {name: {"file": file} for name, file in PLOTS.items()}
    data["accuracy"]["series"], data["tradeoff"]["series"] = {}, {}
    for name in ("length", "length_error"):
        data[name]["total"], data[name]["thinking"] = {}, {}
    samples: dict[int, dict[str, list[int]]] = {}
    for label, strategy, (_, summary, rows) in _series(runs):
        table = [r for r in summary["rows"] if r["strategy"] == strategy]
        x = [r["budget"] for r in table]
        accuracy = [r["accuracy"] for r in table]
        data["accuracy"]["series"][label] = {"x": x, "y": accuracy}
        data["tradeoff"]["series"][label] = {"x": [r["mean_tokens"] for r in table], "y": accuracy, "budgets": x}
        for kind, suffix in (("total", ""), ("thinking", "_thinking")):
            data["length"][kind][label] = {"x": x, "y": [r[f"mean{suffix}_tokens"] for r in table]}
            data["length_error"][kind][label] = {"x": x, "y": [r[f"rel_error{suffix}"] for r in table]}
        for budget in x:
            wanted = None if strategy == "none" else budget
            lengths = [r["tokens"] for r in rows if r["strategy"] == strategy and r["budget"] == wanted]
            samples.setdefault(budget, {})[label] = lengths
    panels = {}
    for budget in sorted(samples):
        values = [n for lengths in samples[budget].values() for n in lengths]
        edges = np.histogram_bin_edges(values, bins=HIST_BINS)
        panels[str(budget)] = {
            "edges": edges.tolist(),
            "counts": {label: np.histogram(v, bins=edges)[0].tolist() for label, v in samples[budget].items()},
        }
    data["length_hist"]["panels"] = panels
    return data


def _figure(ncols: int = 1, nrows: int = 1, width: float = 6.4):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, 4.6 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False).ravel()


def _style(labels: list[str]) -> dict[str, dict[str, Any]]:
    """One colour per series, dashed for the no-budget reference."""
    colours = [f"C{i % 10}" for i in range(len(labels))]
    return {
        lab: {"color": c, "linestyle": "--" if lab.split(": ")[-1] == "none" else "-", "marker": "o"}
        for lab, c in zip(labels, colours, strict=True)
    }


def _budget_axis(ax, budgets: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("thinking budget (tokens)")
    ax.grid(alpha=0.3)


def write_plots(data: dict[str, Any], out: Path, force: bool = False) -> None:
    """Render the four PNGs of ``data`` (from :func:`plot_data`) into ``out``."""
    labels = list(data["accuracy"]["series"])
    style = _style(labels)
    budgets = sorted({b for s in data["accuracy"]["series"].values() for b in s["x"]})

    fig, (ax,) = _figure()
    for label, s in data["accuracy"]["series"].items():
        ax.plot(s["x"], s["y"], label=label, **style[label])
    _budget_axis(ax, budgets)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("accuracy (mean pass@1)")
    ax.set_title("Accuracy vs thinking budget")
    ax.legend(fontsize="small")
    _save(fig, out / PLOTS["accuracy"], force)

    for name, ylabel, title in (
        ("length", "mean generated tokens", "Generated length vs budget"),
        ("length_error", "mean |n - budget| / budget", "Relative length error per budget"),
    ):
        fig, axes = _figure(ncols=2)
        for ax, kind in zip(axes, ("total", "thinking"), strict=True):
            for label, s in data[name][kind].items():
                ax.plot(s["x"], s["y"], label=label, **style[label])
            if name == "length":
                ax.plot(budgets, budgets, color="grey", linestyle=":", label="y = budget")
                ax.set_yscale("log", base=2)
            else:
                ax.set_ylim(bottom=0)
            _budget_axis(ax, budgets)
            ax.set_ylabel(f"{ylabel} ({kind})")
            ax.set_title(f"{title}: {kind} tokens" if kind == "thinking" else f"{title}: all generated tokens")
            ax.legend(fontsize="small")
        _save(fig, out / PLOTS[name], force)

    panels = data["length_hist"]["panels"]
    fig, axes = _figure(ncols=min(len(panels), 3), nrows=-(-len(panels) // 3), width=5.0)
    for ax, (budget, panel) in zip(axes, panels.items(), strict=False):  # spare axes hidden below
        for label, counts in panel["counts"].items():
            ax.stairs(counts, panel["edges"], label=label, color=style[label]["color"], linewidth=1.5)
        ax.axvline(int(budget), color="black", linestyle=":", label=f"budget {budget}")
        ax.set_xlabel("generated tokens (all)")
        ax.set_ylabel("samples")
        ax.set_title(f"Length histogram, budget {budget}")
        ax.legend(fontsize="x-small")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    _save(fig, out / PLOTS["length_hist"], force)
    write_tradeoff(data["tradeoff"]["series"], out / PLOTS["tradeoff"], force)


def write_tradeoff(series: dict[str, dict[str, list]], path: Path, force: bool = False) -> None:
    """Accuracy against mean generated tokens, one line per series, points labelled with their budget (the L1
    paper's main figure).

    Args:
        series: label -> ``x`` (mean tokens), ``y`` (accuracy) and ``budgets``, one each per point.
        path: the PNG to write.
        force: replace an existing file.
    """
    style = _style(list(series))
    fig, (ax,) = _figure()
    for label, s in series.items():
        ax.plot(s["x"], s["y"], label=label, **style[label])
        for x, y, budget in zip(s["x"], s["y"], s["budgets"], strict=True):
            ax.annotate(str(budget), (x, y), xytext=(3, 3), textcoords="offset points", fontsize="x-small")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("mean generated tokens")
    ax.set_ylabel("accuracy (mean pass@1)")
    ax.set_title("Accuracy vs tokens used (points: budgets)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    _save(fig, path, force)


def _save(fig, path: Path, force: bool) -> None:
    with atomic_path(path, force) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown(runs: list[Run]) -> str:
    """report.md: the runs' settings, per strategy and budget results, dial spread and the plots."""
    several = len(runs) > 1
    lines = ["# l1lite eval report", "", "## Runs", ""]
    keys = ["model", "adapter", "endpoint", "dataset", "grader", "mode", "problems", "samples"]
    keys += ["budgets", "temperature", "top_p", "seed", "max_tokens"]
    lines += ["| run | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for label, summary, _ in runs:
        info = summary["run"]
        cells = ["–" if info[k] is None else str(info[k]).replace("|", "\\|") for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "## Accuracy and length by strategy and budget", ""]
    head = (["run"] if several else []) + ["strategy", "budget", "samples"] + [h for _, h, _ in COLUMNS]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for label, summary, _ in runs:
        for row in summary["rows"]:
            cells = ([label] if several else []) + [row["strategy"], str(row["budget"]), str(row["samples"])]
            cells += [_fmt(row.get(k), spec) for k, _, spec in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Dial spread (mean length at the largest budget / at the smallest) and length slope", ""]
    head = (["run"] if several else []) + ["strategy", "total tokens", "thinking tokens", "slope"]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for label, summary, _ in runs:
        for strategy, spread in summary["dial_spread"].items():
            cells = ([label] if several else []) + [strategy, _fmt(spread["total"], ".2f")]
            cells += [_fmt(spread["thinking"], ".2f"), _fmt(summary.get("slope", {}).get(strategy), ".2f")]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Accuracy is the mean pass@1 over problems. Lengths are counted with the model's tokenizer: *tokens* are",
        "all generated tokens (the L1 paper's count), *thinking* only those before `</think>` (what llama.cpp",
        "and vLLM budgets count). Strategies: `prompt` = budget sentence in the prompt, nothing enforced;",
        "`forcing` = s1 budget forcing of the thinking, no budget sentence (exact: minimum and cap, max: cap);",
        "`hardcap` = budget sentence and at most the budget of generated tokens in all; `none` = no budget (the same",
        "samples, generated once, reported against every budget). *Within 20%*: share of samples whose length is",
        "within 20% of the budget. *Slope*: per problem, the least-squares slope of its mean length on the budget,",
        "averaged over problems (ideal 1.0).",
        "",
        "## Plots",
        "",
    ]
    lines += [f"![{name}]({file})" for name, file in PLOTS.items()]
    return "\n".join(lines) + "\n"


def write_report(runs: list[Run], out: str | Path, force: bool = False) -> None:
    """Write report.md, plots.json and the PNG plots of ``runs`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = plot_data(runs)
    write_plots(data, out, force)
    for name, text in (("plots.json", json.dumps(data, indent=1) + "\n"), ("report.md", markdown(runs))):
        with atomic_path(out / name, force) as tmp:
            tmp.write_text(text, encoding="utf-8")


def compare(folders: list[str], out: str | Path, force: bool = False) -> Path:
    """One report and one set of plots for several eval folders side by side (labels: folder names).

    ``out`` may be none of ``folders`` nor a folder above one of them; with ``force`` it replaces only a comparison.
    """
    target = check_output(out, "--out", folder=True).resolve()
    for folder in folders:
        if target == Path(folder).resolve() or target in Path(folder).resolve().parents:
            raise ConfigError(f"--out {out} holds the eval folder {folder}: write the comparison elsewhere")
    runs = [load_run(f) for f in folders]
    seen: dict[str, int] = {}
    for i, (label, summary, rows) in enumerate(runs):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            runs[i] = (f"{label}#{seen[label]}", summary, rows)
    with atomic_path(out, force, holds=REPORT_FILES) as tmp:
        write_report(runs, tmp)
    return Path(out) / "report.md"
