"""PNG plots of a run: held-out accuracy and mean response length over steps (the paper's Figure 1
in miniature), with the noisy training-batch values as moving averages behind them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt

from r1kit.evaluation.analysis import GLOSSES


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over up to `window` values.

    >>> moving_average([1, 3, 5], 2)
    [1.0, 2.0, 4.0]
    """
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_run(rows: Sequence[dict[str, Any]], out_dir: Path, *, title: str = "") -> list[Path]:
    """Write accuracy.png, response_length.png, reflective_words.png, language_consistency.png and
    reflective_words_by_word.png under out_dir (each task of a multi-task or bilingual evaluation as a line
    of its own); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    evals = [r for r in rows if "eval/pass@1" in r]
    train = [r for r in rows if "reward/mean" in r]
    window = max(len(train) // 15, 1)
    panels = [
        ("accuracy.png", "eval/pass@1", "accuracy", "held-out pass@1", "training-batch accuracy"),
        ("response_length.png", "eval/mean_response_tokens", "response_length/mean",
         "held-out mean response tokens", "training-batch mean response tokens"),
        ("reflective_words.png", "eval/reflective_words", "", "held-out reflective words per response", ""),
        ("language_consistency.png", "eval/language_consistency", "",
         "held-out language consistency of the CoT", ""),
    ]
    paths = []
    for filename, eval_key, train_key, eval_label, train_label in panels:
        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
        if not any(eval_key in r for r in evals):
            plt.close(fig)
            continue
        if train and train_key and train_key in train[0]:
            ax.plot([r["step"] for r in train], moving_average([r[train_key] for r in train], window),
                    color="tab:gray", alpha=0.6, label=f"{train_label} (moving avg)")
        ax.plot([r["step"] for r in evals], [r[eval_key] for r in evals], "o-", color="tab:blue",
                label=f"{eval_label} (all)" if _tasks(evals, eval_key) else eval_label)
        for task, color in zip(_tasks(evals, eval_key), _TASK_COLORS * 4, strict=False):
            key = eval_key.replace("eval/", f"eval/{task}/")
            ax.plot([r["step"] for r in evals if key in r], [r[key] for r in evals if key in r], ".--",
                    label=task, alpha=0.8, color=color)
        ax.set_xlabel("step")
        ax.set_ylabel(eval_label)
        if "pass" in eval_key or "consistency" in eval_key:
            ax.set_ylim(0, 1.02)
        ax.set_title(title or eval_label)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / filename)
        plt.close(fig)
        paths.append(out_dir / filename)
    by_word = plot_reflection_by_word(rows, out_dir / "reflective_words_by_word.png", title=title)
    return paths + ([by_word] if by_word else [])


REFLECTIVE_PREFIX = "eval/reflective_words/"
"""Metrics-log keys of each reflective word's occurrences per held-out response (`EvalResult.metrics`)."""


def plot_reflection_by_word(rows: Sequence[dict[str, Any]], path: Path, *, title: str = "",
                            top: int = 8) -> Path | None:
    """Reflective words per held-out response against training step: the total (`eval/reflective_words`)
    and the `top` words with the most occurrences over the run, one line each (the paper's Fig. 1b words,
    "wait" rising). None when the log holds no periodic evaluation with reflective words."""
    evals = [r for r in rows if "eval/reflective_words" in r]
    if not evals:
        return None
    totals: dict[str, float] = {}
    for r in evals:
        for key, value in r.items():
            if key.startswith(REFLECTIVE_PREFIX):
                word = key.removeprefix(REFLECTIVE_PREFIX)
                totals[word] = totals.get(word, 0.0) + value
    words = sorted((w for w in totals if totals[w] > 0), key=lambda w: -totals[w])[:top]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    steps = [r["step"] for r in evals]
    ax.plot(steps, [r["eval/reflective_words"] for r in evals], "o-", color="black", label="all reflective words")
    for word, color in zip(words, _TASK_COLORS * 2, strict=False):
        key = REFLECTIVE_PREFIX + word
        ax.plot(steps, [r.get(key, 0.0) for r in evals], ".--", color=color, label=GLOSSES.get(word, word))
    ax.set_xlabel("step")
    ax.set_ylabel("occurrences per response")
    ax.set_title(title or "reflective words per held-out response")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


_TASK_COLORS = ["tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink"]


def _tasks(evals: Sequence[dict[str, Any]], eval_key: str) -> list[str]:
    """The tasks with their own `eval/<task>/<metric>` series for `eval_key` (`eval/<metric>`)."""
    metric = eval_key.removeprefix("eval/")
    return sorted({k.split("/")[1] for r in evals for k in r if k.count("/") == 2 and k.endswith(f"/{metric}")})


def plot_lines(rows: Sequence[dict[str, Any]], series: dict[str, str], path: Path, *, title: str = "",
               ylabel: str = "") -> Path | None:
    """One PNG with a line per metric key in `series` (key -> label) over `step`; None when none is logged."""
    lines = {key: [(r["step"], r[key]) for r in rows if key in r] for key in series}
    if not any(lines.values()):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for key, points in lines.items():
        if points:
            ax.plot([s for s, _ in points], [v for _, v in points], "o-" if len(points) < 30 else "-",
                    label=series[key], markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_bars(groups: dict[str, dict[str, float]], path: Path, *, title: str = "", ylabel: str = "") -> Path:
    """Grouped bars: for each group (x), one bar per key of its mapping (e.g. task -> reason -> count)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for values in groups.values() for k in values))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups) * max(len(keys), 1) / 3), 3.8), dpi=110)
    width = 0.8 / max(len(keys), 1)
    for j, key in enumerate(keys):
        xs = [i + j * width for i in range(len(groups))]
        ax.bar(xs, [values.get(key, 0) for values in groups.values()], width, label=key)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))], list(groups), fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_hacking(rows: Sequence[dict[str, Any]], golds: dict[str, list[str]], path: Path) -> Path | None:
    """Reward hacking against the distance travelled (Gao et al. 2023's axis): for each reward model, its
    proxy reward (`reward/<name>/mean` while active) and the gold of the tasks it scores (the mean of
    their `eval/<task>/pass@1`) against sqrt(KL to the reference), the reference being the starting
    policy unless refreshed. `golds`: reward name -> the tasks it scores. None when nothing is logged."""
    kl = {r["step"]: math.sqrt(max(r["kl"], 0.0)) for r in rows if isinstance(r.get("kl"), float)}
    kl[0] = 0.0
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    drawn = False
    for (name, tasks), color in zip(golds.items(), _TASK_COLORS * 4, strict=False):
        proxy = [(kl[r["step"]], r[f"reward/{name}/mean"]) for r in rows
                 if r.get(f"reward/{name}/active", 1.0) == 1.0 and f"reward/{name}/mean" in r and r["step"] in kl]
        gold = [(kl[r["step"]], sum(r[f"eval/{t}/pass@1"] for t in tasks) / len(tasks)) for r in rows
                if r["step"] in kl and all(f"eval/{t}/pass@1" in r for t in tasks)]
        if proxy:
            ax.plot([x for x, _ in proxy], [y for _, y in proxy], ".", color=color, alpha=0.5,
                    label=f"{name}: proxy (RM reward)")
        if gold:
            ax.plot([x for x, _ in gold], [y for _, y in gold], "o-", color=color,
                    label=f"{name}: gold ({', '.join(tasks)})")
        drawn = drawn or bool(proxy or gold)
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("sqrt(KL to the reference)")
    ax.set_ylabel("reward / gold pass@1")
    ax.set_title("reward hacking: proxy and gold against sqrt(KL)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_ablation(runs: dict[str, Sequence[dict[str, Any]]], panels: dict[str, str], path: Path, *,
                  title: str = "") -> Path | None:
    """One panel per metric (`panels`: metrics.jsonl key -> label), one line per run (`runs`: label ->
    rows), over training steps: e.g. the language-reward ablation (Supp. Fig. 4). None when nothing is logged."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), dpi=110, squeeze=False)
    drawn = False
    for ax, (key, label) in zip(axes[0], panels.items(), strict=True):
        for (name, rows), color in zip(runs.items(), _TASK_COLORS * 4, strict=False):
            points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)]
            if points:
                ax.plot([s for s, _ in points], [v for _, v in points], "o-", color=color, label=name)
                drawn = True
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if not drawn:
        plt.close(fig)
        return None
    if title:
        fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
