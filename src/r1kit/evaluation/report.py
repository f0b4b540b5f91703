"""Plots and a self-contained HTML report of `r1kit eval` results (PNGs embedded as base64, the sample
browser of `evaluation.browser`, and, when the model is a training run's, its reflective words against
training step)."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from r1kit.evaluation.analysis import GLOSSES
from r1kit.evaluation.browser import BROWSER_CSS, browser_html
from r1kit.evaluation.plots import plot_reflection_by_word
from r1kit.tasks.files import jsonl_lines
from r1kit.trainers.checkpoint import write_atomic


def _save(fig: Any, path: Path) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    data = buf.getvalue()
    path.write_bytes(data)
    return data


def plot_results(results: dict[str, Any], out_dir: Path) -> dict[str, bytes]:
    """scores.png (pass@1 and cons@k with 95 % intervals), pass_at_k.png, lengths.png, reflection.png and,
    where levels exist, thinking_by_level.png. Returns {file name: PNG bytes}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = results["tasks"]
    names = list(tasks)
    pngs: dict[str, bytes] = {}

    fig, ax = plt.subplots(figsize=(max(4, 1.4 * len(names) + 2), 3.4), dpi=110)
    for offset, key, label in ((-0.2, "pass@1", "pass@1"), (0.2, "cons@k", f"cons@{results['protocol']['k']}")):
        values = [tasks[n][key] for n in names]
        ci_key = "pass@1_ci95" if key == "pass@1" else f"cons@{results['protocol']['k']}_ci95"
        errors = [[v - tasks[n][ci_key][0] for n, v in zip(names, values, strict=True)],
                  [tasks[n][ci_key][1] - v for n, v in zip(names, values, strict=True)]]
        ax.bar([i + offset for i in range(len(names))], values, width=0.4, yerr=errors, capsize=3, label=label)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    pngs["scores.png"] = _save(fig, out_dir / "scores.png")

    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=110)
    for n in names:
        curve = tasks[n]["pass@k"]
        ax.plot([int(k) for k in curve], list(curve.values()), "o-", label=n)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (unbiased)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    pngs["pass_at_k.png"] = _save(fig, out_dir / "pass_at_k.png")

    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=110)
    for n in names:
        hist = tasks[n]["analyses"]["response_tokens"]["histogram"]
        if hist["counts"]:
            ax.stairs(hist["counts"], hist["edges"], label=n)
    ax.set_xlabel("response tokens")
    ax.set_ylabel("responses")
    ax.legend(fontsize=8)
    pngs["lengths.png"] = _save(fig, out_dir / "lengths.png")

    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=110)
    words = list(next(iter(tasks.values()))["analyses"]["reflection"]["per_word"])
    for i, n in enumerate(names):
        per_word = tasks[n]["analyses"]["reflection"]["per_word"]
        total = max(tasks[n]["n_prompts"] * tasks[n]["k"], 1)
        ax.bar([j + i / (len(names) + 1) for j in range(len(words))], [per_word[w] / total for w in words],
               width=1 / (len(names) + 1), label=n)
    ax.set_xticks(range(len(words)), [GLOSSES.get(w, w) for w in words], rotation=60, fontsize=7)
    ax.set_ylabel("occurrences per response")
    ax.legend(fontsize=8)
    pngs["reflection.png"] = _save(fig, out_dir / "reflection.png")

    levelled = {n: tasks[n]["analyses"]["thinking_tokens_by_level"] for n in names
                if tasks[n]["analyses"]["thinking_tokens_by_level"]}
    if levelled:
        fig, ax = plt.subplots(figsize=(5, 3.4), dpi=110)
        for n, by_level in levelled.items():
            ax.plot(list(by_level), list(by_level.values()), "o-", label=n)
        ax.set_xlabel("difficulty level")
        ax.set_ylabel("mean thinking tokens")
        ax.legend(fontsize=8)
        pngs["thinking_by_level.png"] = _save(fig, out_dir / "thinking_by_level.png")
    return pngs


def training_rows(run_log: Path) -> list[dict[str, Any]]:
    """The rows of a training run's metrics.jsonl (a line cut by a kill is skipped)."""
    rows = []
    for line in jsonl_lines(run_log.read_text(encoding="utf-8")):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def write_report(out: Path, results: dict[str, Any], cfg: Any, *,
                 rows_by_task: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                 run_log: Path | None = None) -> Path:
    """plots/*.png and report.html (one file: tables, the plots inlined, the sample browser of
    `rows_by_task` (samples.jsonl rows) and, given the model's training `run_log` (its metrics.jsonl),
    plots/training_reflective_words.png: reflective words per held-out response against training step)."""
    pngs = plot_results(results, out / "plots")
    training = ""
    if run_log is not None:
        drawn = plot_reflection_by_word(training_rows(run_log), out / "plots" / "training_reflective_words.png",
                                        title="reflective words during training")
        if drawn is not None:
            pngs[drawn.name] = drawn.read_bytes()
            training = f"<p>training_reflective_words.png: from {html.escape(str(run_log))}</p>"
    k = results["protocol"]["k"]
    head = ["task", "prompts", "pass@1", "95% CI", f"cons@{k}", "95% CI", f"pass@{k}", "greedy", "format",
            "mean tokens", "reflective words / response", "aha samples", "language mixing"]
    body = []
    for name, r in [*results["tasks"].items(), ("overall", results["overall"])]:
        a = r.get("analyses", {})
        cells = [name, r["n_prompts"], f"{r['pass@1']:.3f}", "{:.3f}-{:.3f}".format(*r["pass@1_ci95"]),
                 f"{r['cons@k']:.3f}", "{:.3f}-{:.3f}".format(*r[f"cons@{k}_ci95"]), f"{r['pass@k'][str(k)]:.3f}",
                 f"{r['greedy']:.3f}" if "greedy" in r else "", f"{r['format_rate']:.3f}",
                 f"{r['mean_response_tokens']:.1f}",
                 f"{a['reflection']['per_response']:.3f}" if a else "",
                 a["aha"]["count"] if "aha" in a else "",
                 f"{a['language_mixing_rate']:.3f}" if "language_mixing_rate" in a else ""]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    images = "".join(f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,'
                     f'{base64.b64encode(data).decode()}"><figcaption>{html.escape(n)}</figcaption></figure>'
                     for n, data in pngs.items())
    protocol = html.escape(", ".join(f"{key}={value}" for key, value in results["protocol"].items()))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>r1kit eval</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px;text-align:right}}figure{{display:inline-block;margin:1em}}{BROWSER_CSS}</style></head><body>
<h1>r1kit eval</h1><p>{protocol}</p>
<table><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in head)}</tr>{"".join(body)}</table>
{images}{training}{browser_html(rows_by_task) if rows_by_task else ""}</body></html>
"""
    write_atomic(out / "report.html", page)
    return out / "report.html"
