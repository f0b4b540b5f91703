"""The paper's Table 2 and Table 6 in miniature, from `r1kit eval` runs and stage-4 metrics (`r1kit pipeline`).

Every model gets the same measures `M` (R1-SPEC sections 3-5), from the eval protocol's samples:

- `reasoning_pass@1`: the mean over the reasoning tasks (English and Chinese) of their pass@1;
- `language_consistency`: the mean share of chain-of-thought words in the prompt's language (the stage-2
  reward, `rewards.language`), over the reasoning completions;
- `format_rate`: the share of reasoning completions in the model's own format (R1-Zero's tags for a
  model prompted with `r1_zero`, `<think>` then a summary for `r1`), as `r1kit eval` grades it;
- `readable_rate`: the share of reasoning completions with no `readability_issues` (the same check for
  every model);
- `helpfulness` / `harmlessness`: the gold rules (the general tasks' verifiers, never the reward models)
  on held-out general prompts: the mean pass@1 of the helpful tasks, and of the harmless ones;
- `mean_cot_tokens`: tokens inside `<think>...</think>` per reasoning completion.

`H` (reward hacking, Supp. Fig. 3): over stage 4's evaluations, the last minus the first of the reward
models' mean score on the held-out general completions (`eval/rm/<name>`, the proxy) and of the gold
helpfulness-and-harmlessness mean.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from r1kit.evaluation.analysis import thinking_text
from r1kit.rewards.language import language_consistency

STAGES = ("r1_zero", "dev1", "dev2", "dev3", "r1")
STUDENTS = ("base", "rl", "distill", "teacher")
SCHEDULES = ("window", "all_steps")
MEASURES = ("reasoning_pass@1", "language_consistency", "format_rate", "readable_rate", "helpfulness",
            "harmlessness", "mean_cot_tokens")

PAPER_TABLE2 = {"r1_zero": {"AIME 2024": 77.9, "IF-Eval": 46.6, "AlpacaEval2 LC": 24.7},
                "dev1": {"AIME 2024": 59.0, "IF-Eval": 71.7, "AlpacaEval2 LC": 50.1},
                "dev2": {"AIME 2024": 74.0, "IF-Eval": 72.0, "AlpacaEval2 LC": 55.8},
                "dev3": {"AIME 2024": 78.1, "IF-Eval": 78.1, "AlpacaEval2 LC": 62.1},
                "r1": {"AIME 2024": 79.8, "IF-Eval": 83.3, "AlpacaEval2 LC": 87.6}}
"""R1-SPEC section 3: the paper's Table 2, selected rows."""
PAPER_TABLE6 = {"rl": {"AIME 2024": 47.0}, "distill": {"AIME 2024": 72.6}}
"""R1-SPEC section 4: Table 6, Qwen2.5-32B with large-scale RL against distilled from R1."""


Rows = Mapping[str, Sequence[Mapping[str, Any]]]
"""`r1kit eval` sample rows (samples.jsonl) by task."""


def model_metrics(reasoning: Rows, general: Rows, *, helpful_tasks: Sequence[str], harmless_tasks: Sequence[str],
                  count_tokens: Callable[[str], int]) -> dict[str, float]:
    """M from `r1kit eval` sample rows (samples.jsonl), by task: see the module docstring."""
    rows = [r for task_rows in reasoning.values() for r in task_rows]
    completions = [(c, r) for r in rows for c in r["completions"]]
    if not completions:
        raise ValueError("no reasoning completions to measure")

    def share(key: str) -> float:
        return sum(sum(r[key]) for r in rows) / len(completions)

    def gold(tasks: Sequence[str]) -> float:
        scores = [_pass1(general[t]) for t in tasks if general.get(t)]
        return sum(scores) / len(scores) if scores else float("nan")

    consistency = [language_consistency(c, (r.get("info") or {}).get("language") or "en") for c, r in completions]
    return {"reasoning_pass@1": sum(_pass1(task_rows) for task_rows in reasoning.values()) / len(reasoning),
            "language_consistency": sum(consistency) / len(consistency),
            "format_rate": share("format"), "readable_rate": share("readable"),
            "helpfulness": gold(helpful_tasks), "harmlessness": gold(harmless_tasks),
            "mean_cot_tokens": sum(count_tokens(thinking_text(c)) if "<think>" in c else 0
                                   for c, _ in completions) / len(completions),
            **{f"pass@1/{task}": _pass1(task_rows) for task, task_rows in {**reasoning, **general}.items()}}


def _pass1(rows: Sequence[Mapping[str, Any]]) -> float:
    return sum(sum(r["correct"]) / len(r["correct"]) for r in rows) / len(rows)


def hacking(rows: Sequence[Mapping[str, Any]], reward_models: Sequence[str], helpful_tasks: Sequence[str],
            harmless_tasks: Sequence[str]) -> dict[str, float]:
    """H from a stage-4 run's metrics.jsonl rows: the proxy (mean of `eval/rm/<name>`) and the gold
    (mean of helpfulness and harmlessness, each a mean of `eval/<task>/pass@1`), last eval minus first."""
    evals = [r for r in rows if all(f"eval/rm/{n}" in r for n in reward_models) and "eval/pass@1" in r]
    if len(evals) < 2:
        raise ValueError("stage 4 logged fewer than two evaluations with reward-model scores")

    def proxy(r: Mapping[str, Any]) -> float:
        return sum(r[f"eval/rm/{n}"] for n in reward_models) / len(reward_models)

    def gold(r: Mapping[str, Any]) -> float:
        parts = [sum(r[f"eval/{t}/pass@1"] for t in tasks) / len(tasks)
                 for tasks in (helpful_tasks, harmless_tasks) if tasks]
        return sum(parts) / len(parts)

    first, last = evals[0], evals[-1]  # exactly the two keys of table.json's H
    return {"proxy_gain": proxy(last) - proxy(first), "gold_gain": gold(last) - gold(first)}


def mean_table(tables: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The mean of several seeds' tables, with `<measure>_min` / `<measure>_max` beside each mean."""
    if len(tables) == 1:
        return dict(tables[0])
    out: dict[str, Any] = {}
    for group in ("stages", "students", "hacking"):
        out[group] = {}
        for name in tables[0][group]:
            entries = [t[group][name] for t in tables if t[group].get(name) is not None]
            if not entries:
                out[group][name] = None
                continue
            merged: dict[str, float] = {}
            for key in entries[0]:
                values = [e[key] for e in entries]
                merged[key] = sum(values) / len(values)
                merged[f"{key}_min"], merged[f"{key}_max"] = min(values), max(values)
            merged["seeds"] = len(entries)
            out[group][name] = merged
    return out


def findings(table: Mapping[str, Any]) -> list[tuple[str, bool | None, str]]:
    """The paper's six findings (the issue's goals) checked on a table: (finding, holds, the numbers);
    holds is None when a row it needs is missing."""
    s, st, h = table["stages"], table["students"], table["hacking"]

    def get(group: Mapping[str, Any], name: str, key: str) -> float | None:
        return None if group.get(name) is None else group[name][key]

    def check(text: str, holds: Callable[..., bool], *values: float | None, fmt: str) -> tuple[str, bool | None, str]:
        if any(v is None for v in values):
            return text, None, "not run"
        return text, bool(holds(*values)), fmt.format(*values)

    rp, lc, rr = "reasoning_pass@1", "language_consistency", "readable_rate"
    return [
        check("1. Dev1 is more readable than R1-Zero (consistency and readable rate at least R1-Zero's)",
              lambda a, b, c, d: a >= b and c >= d, get(s, "dev1", lc), get(s, "r1_zero", lc), get(s, "dev1", rr),
              get(s, "r1_zero", rr), fmt="consistency {0:.3f} vs {1:.3f}, readable {2:.3f} vs {3:.3f}"),
        check("2. Dev2 wins the reasoning back (pass@1 at least Dev1's) with consistency >= 0.95",
              lambda a, b, c: a >= b and c >= 0.95, get(s, "dev2", rp), get(s, "dev1", rp), get(s, "dev2", lc),
              fmt="pass@1 {0:.3f} vs {1:.3f}, consistency {2:.3f}"),
        check("3. Dev3 and R1 raise helpfulness and harmlessness over Dev2",
              lambda a, b, c, d, e, f: min(a, c) > e and min(b, d) > f, get(s, "dev3", "helpfulness"),
              get(s, "dev3", "harmlessness"), get(s, "r1", "helpfulness"), get(s, "r1", "harmlessness"),
              get(s, "dev2", "helpfulness"), get(s, "dev2", "harmlessness"),
              fmt="helpful {0:.3f} / {2:.3f} vs {4:.3f}, harmless {1:.3f} / {3:.3f} vs {5:.3f}"),
        check("4. R1 >= Dev3 on helpfulness and harmlessness, at most 2 points below it on reasoning",
              lambda a, b, c, d, e, f: a >= b and c >= d and e >= f - 0.02, get(s, "r1", "helpfulness"),
              get(s, "dev3", "helpfulness"), get(s, "r1", "harmlessness"), get(s, "dev3", "harmlessness"),
              get(s, "r1", rp), get(s, "dev3", rp),
              fmt="helpful {0:.3f} vs {1:.3f}, harmless {2:.3f} vs {3:.3f}, reasoning {4:.3f} vs {5:.3f}"),
        check("5. The distilled student beats the RL student on reasoning (Table 6)", lambda a, b: a > b,
              get(st, "distill", rp), get(st, "rl", rp), fmt="{0:.3f} vs {1:.3f}"),
        check("6. RMs for all steps are hacked (proxy up, gold down); the last-steps window is not",
              lambda a, b, c: a > 0 and b < 0 and c >= 0, get(h, "all_steps", "proxy_gain"),
              get(h, "all_steps", "gold_gain"), get(h, "window", "gold_gain"),
              fmt="all steps: proxy {0:+.3f}, gold {1:+.3f}; window: gold {2:+.3f}"),
    ]


def write_tables(out: Path, table: Mapping[str, Any], times: Mapping[str, float], plots: Sequence[Path]) -> None:
    """table.json (the shape other tools read), table.md and report.html in `out`."""
    (out / "table.json").write_text(json.dumps(table, indent=2) + "\n")
    md = markdown(table, times)
    (out / "table.md").write_text(md)
    images = "".join(f'<p><img src="{html.escape(str(p.relative_to(out)))}" style="max-width:720px"></p>'
                     for p in plots if p.is_file())
    (out / "report.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>r1kit pipeline</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}</style>"
        f"<h1>R1 in miniature</h1>{_md_tables_to_html(md)}{images}")


def markdown(table: Mapping[str, Any], times: Mapping[str, float]) -> str:
    """Table 2 and Table 6 in miniature beside the paper's numbers, the hacking rows, the findings, times."""
    def cell(m: Mapping[str, Any] | None, key: str) -> str:
        if m is None:
            return "-"
        spread = f" [{m[key + '_min']:.3f}, {m[key + '_max']:.3f}]" if key + "_min" in m else ""
        return (f"{m[key]:.1f}" if key == "mean_cot_tokens" else f"{m[key]:.3f}") + spread

    head = "| | " + " | ".join(MEASURES) + " | paper: AIME / IF-Eval / AlpacaEval2 |"
    lines = ["## Table 2 in miniature (the R1 stages)", "", head, "|---" * (len(MEASURES) + 2) + "|"]
    for name in STAGES:
        paper = " / ".join(f"{v}" for v in PAPER_TABLE2[name].values())
        cells = " | ".join(cell(table["stages"].get(name), k) for k in MEASURES)
        lines.append(f"| {name} | {cells} | {paper} |")
    lines += ["", "## Table 6 in miniature (the student: its own RL against distillation)", "",
              "| | " + " | ".join(MEASURES) + " | paper: AIME (Qwen2.5-32B) |", "|---" * (len(MEASURES) + 2) + "|"]
    for name in STUDENTS:
        paper = str(PAPER_TABLE6.get(name, {}).get("AIME 2024", "-"))
        cells = " | ".join(cell(table["students"].get(name), k) for k in MEASURES)
        lines.append(f"| {name} | {cells} | {paper} |")
    lines += ["", "## Reward hacking (stage 4, last evaluation minus first)", "",
              "| RM schedule | proxy_gain | gold_gain |", "|---|---|---|"]
    for name in SCHEDULES:
        h = table["hacking"].get(name)
        lines.append(f"| {name} | {cell(h, 'proxy_gain')} | {cell(h, 'gold_gain')} |")
    lines += ["", "## The paper's findings", ""]
    verdicts = {True: "holds", False: "does not hold", None: "not measured"}
    for text, holds, numbers in findings(table):
        lines.append(f"- {text}: **{verdicts[holds]}** ({numbers})")
    lines += ["", "## Stage times", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.0f} |" for name, seconds in times.items()]
    lines.append(f"| total | {sum(times.values()):.0f} |")
    return "\n".join(lines) + "\n"


def _md_tables_to_html(md: str) -> str:
    """The markdown of `markdown()` as HTML: headings, tables, bullet lines (nothing else occurs in it)."""
    out, in_table = [], False
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if set(line) <= {"|", "-"}:
                continue
            tag = "th" if not in_table else "td"
            out.append(("<table>" if not in_table else "") + "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells)
                       + "</tr>")
            in_table = True
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            out.append(f"<p>{html.escape(line[2:]).replace('**', '')}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)
