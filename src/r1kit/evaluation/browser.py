"""The sample browser of `report.html`: every task's samples, filtered to correct / wrong / "aha" ones and
searched by substring, in one self-contained block of HTML (inline CSS and JS, the samples embedded as
JSON; no server, no network).

What is embedded is bounded: at most `MAX_SAMPLES_PER_TASK` samples of a task, chosen as every "aha"
sample first (`analysis.find_aha`), then wrong and correct samples alternately in prompt order, so a
task with thousands of samples still shows both kinds; the browser says how many of how many it holds.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from itertools import zip_longest
from typing import Any

from r1kit.evaluation.analysis import row_ahas

MAX_SAMPLES_PER_TASK = 200
"""Samples of one task embedded in report.html (each can be a few kB of completion)."""


def _utf16_offset(text: str, offset: int) -> int:
    """A Python string offset as a JavaScript one (UTF-16 code units: astral characters count twice).

    >>> _utf16_offset("😀 wait", 2)
    3
    """
    return len(text[:offset].encode("utf-16-le")) // 2


def browser_samples(rows: Sequence[Mapping[str, Any]], cap: int = MAX_SAMPLES_PER_TASK) -> list[dict[str, Any]]:
    """The samples of one task's `samples.jsonl` rows that the browser embeds (at most `cap`), in prompt
    order: every aha sample first, then wrong and correct ones alternately until `cap` is reached."""
    samples: list[dict[str, Any]] = []
    aha: list[int] = []  # indices into samples, by kind
    wrong: list[int] = []
    correct: list[int] = []
    for row in rows:
        for j, (text, extracted, ok, found) in enumerate(zip(row["completions"], row["extracted"], row["correct"],
                                                              row_ahas(row), strict=True)):
            sample = {"prompt_index": row["index"], "sample": j, "prompt": row["prompt"], "answer": row["answer"],
                      "completion": text, "extracted": extracted, "correct": bool(ok), "aha": None}
            if found is not None:
                sample["aha"] = {"word": found.word, "before": found.before, "after": found.after,
                                 "offset": _utf16_offset(text, found.offset),
                                 "length": _utf16_offset(text, found.offset + len(found.word))
                                 - _utf16_offset(text, found.offset)}
            (aha if found is not None else correct if ok else wrong).append(len(samples))
            samples.append(sample)
    alternating = [i for pair in zip_longest(wrong, correct) for i in pair if i is not None]
    chosen = (aha + alternating)[:cap]
    return [samples[i] for i in sorted(chosen)]


def script_json(value: Any) -> str:
    """JSON safe inside `<script type="application/json">`: `<`, `>` and `&` escaped as \\u003c ..., so a
    completion holding `</script>` or `<!--` cannot end or change the block (JSON.parse restores them).

    >>> script_json({"c": "</script><!--&"})
    '{"c": "\\\\u003c/script\\\\u003e\\\\u003c!--\\\\u0026"}'
    """
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def browser_html(rows_by_task: Mapping[str, Sequence[Mapping[str, Any]]], cap: int = MAX_SAMPLES_PER_TASK) -> str:
    """The browser's HTML section (controls, the embedded samples, the script)."""
    tasks: dict[str, Any] = {}
    notes = []
    for name, rows in rows_by_task.items():
        total = sum(len(r["completions"]) for r in rows)
        samples = browser_samples(rows, cap)
        tasks[name] = {"total": total, "samples": samples}
        notes.append(f"{name}: {len(samples)} of {total}")
    options = "".join(f'<option value="{html.escape(n, quote=True)}">{html.escape(n)}</option>' for n in rows_by_task)
    return f"""<section id="browser"><h2>Samples</h2>
<p class="note">At most {cap} samples per task are embedded: every "aha" sample (a reflective word followed by
a changed, correct answer) first, then wrong and correct ones alternately in prompt order
({html.escape("; ".join(notes))}). Search matches prompt and completion, ignoring case.</p>
<div class="controls"><label>task <select id="sample-task">{options}</select></label>
<span id="sample-filters"><button type="button" data-filter="all" aria-pressed="true">all</button><button
type="button" data-filter="correct" aria-pressed="false">correct</button><button type="button" data-filter="wrong"
aria-pressed="false">wrong</button><button type="button" data-filter="aha" aria-pressed="false">aha</button></span>
<input id="sample-search" type="search" placeholder="search prompt and completion">
<span id="sample-count" data-shown="0"></span></div>
<div id="sample-list"></div>
<script type="application/json" id="sample-data">{script_json({"cap": cap, "tasks": tasks})}</script>
<script>{_SCRIPT}</script></section>
"""


BROWSER_CSS = """#browser .controls{margin:.5em 0;display:flex;gap:1em;align-items:center;flex-wrap:wrap}
#sample-filters button{margin-right:2px}#sample-filters button[aria-pressed=true]{background:#333;color:#fff}
.sample{border:1px solid #ddd;margin:4px 0;padding:4px 8px}.sample.correct{border-left:4px solid #2a2}
.sample.wrong{border-left:4px solid #c33}.sample pre{white-space:pre-wrap;word-break:break-word;margin:.4em 0}
.sample mark{background:#fd6}.note{color:#555;font-size:.9em}"""

_SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("sample-data").textContent);
  var state = {task: document.getElementById("sample-task").value, filter: "all", query: ""};
  var list = document.getElementById("sample-list"), count = document.getElementById("sample-count");
  var buttons = document.querySelectorAll("#sample-filters button");
  function keep(s, filter) {
    if (filter === "correct" && !s.correct) return false;
    if (filter === "wrong" && s.correct) return false;
    if (filter === "aha" && !s.aha) return false;
    return true;
  }
  function found(s) {
    var q = state.query.toLowerCase();
    return !q || (s.prompt + "\\n" + s.completion).toLowerCase().indexOf(q) >= 0;
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function card(s) {
    var box = el("details", "sample " + (s.correct ? "correct" : "wrong") + (s.aha ? " aha" : ""));
    var head = (s.correct ? "correct" : "wrong") + (s.aha ? ", aha (" + s.aha.before + " -> " + s.aha.after + ")" : "");
    box.append(el("summary", "", "#" + s.prompt_index + "." + s.sample + " [" + head + "] " + s.prompt +
                  "  ->  " + (s.extracted === null ? "(no answer)" : s.extracted) + "  (reference " + s.answer + ")"));
    var pre = el("pre", "completion");
    if (s.aha) {
      pre.append(s.completion.slice(0, s.aha.offset),
                 el("mark", "", s.completion.slice(s.aha.offset, s.aha.offset + s.aha.length)),
                 s.completion.slice(s.aha.offset + s.aha.length));
    } else {
      pre.textContent = s.completion;
    }
    box.append(pre);
    if (s.aha) box.open = true;
    return box;
  }
  function render() {
    var samples = data.tasks[state.task].samples, shown = 0;
    list.replaceChildren();
    samples.forEach(function (s) {
      if (keep(s, state.filter) && found(s)) { list.append(card(s)); shown += 1; }
    });
    buttons.forEach(function (b) {
      var f = b.dataset.filter;
      b.textContent = f + " (" + samples.filter(function (s) { return keep(s, f); }).length + ")";
      b.setAttribute("aria-pressed", String(f === state.filter));
    });
    count.dataset.shown = String(shown);
    count.textContent = shown + " of " + samples.length + " embedded samples shown (" + data.tasks[state.task].total +
                        " in the evaluation)";
  }
  buttons.forEach(function (b) {
    b.addEventListener("click", function () { state.filter = b.dataset.filter; render(); });
  });
  document.getElementById("sample-task").addEventListener("change", function (e) {
    state.task = e.target.value; render();
  });
  document.getElementById("sample-search").addEventListener("input", function (e) {
    state.query = e.target.value; render();
  });
  render();
})();
"""
