"""report.html's sample browser in a real headless Chromium: filters, search, no console error, no
network. The report comes from `r1kit eval` of the embedded model (copied into a run directory beside a
training metrics log), with two of its samples rewritten by hand and the evaluation rerun, so the page
holds a known "aha" sample and a completion that tries to close the embedded JSON's script block.

Chromium is the Debian package (`apt-get install chromium`, done here when it is missing and this user
may run apt-get, as `r1kit setup-sandbox` does for bubblewrap), driven by the `playwright` package of the
test extra (its own browser download is never used). The test skips, saying why, only when neither
chromium nor a way to install it exists.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from r1kit.config import EvalRunConfig
from r1kit.evaluation.analysis import row_ahas
from r1kit.evaluation.protocol import run_eval
from r1kit.models.embedded import EMBEDDED_MODEL_DIR
from r1kit.sandbox.install import _apt_install
from r1kit.sandbox.run import SandboxUnavailableError

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing: pip install -e '.[test]'")

AHA = " <think>{a}+{b}: so {wrong}. wait, let me check the carries: so {right}.</think> <answer>{right}</answer>"
HOSTILE = "</script><script>window.pwned = 1</script><!-- unique-hostile-marker"


@pytest.fixture(scope="module")
def chromium() -> str:
    if shutil.which("chromium") is None:
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        if (sudo and shutil.which("sudo") is None) or shutil.which("apt-get") is None:
            pytest.skip("no chromium on PATH, and no apt-get as root or through sudo to install it: "
                        "apt-get install chromium")
        try:
            _apt_install("chromium", sudo)
        except SandboxUnavailableError as e:
            pytest.skip(f"no chromium on PATH and installing it failed: {e}")
    path = shutil.which("chromium")
    assert path is not None, "apt-get installed chromium but it is not on PATH"
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """(report.html, samples rows by task) of a real evaluation of a model inside a run directory."""
    tmp = tmp_path_factory.mktemp("browser")
    shutil.copytree(EMBEDDED_MODEL_DIR, tmp / "run" / "model")
    (tmp / "run" / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "eval/pass@1": 0.3, "eval/reflective_words": 0.1 * s,
                    "eval/reflective_words/wait": 0.1 * s}) + "\n" for s in (0, 10, 20)))
    cfg = EvalRunConfig(model=str(tmp / "run" / "model"), tasks="arithmetic,countdown", limit=6, k=4,
                        max_new_tokens=64, out_dir=str(tmp / "ev"))
    run_eval(cfg)
    samples = tmp / "ev" / "samples.jsonl"
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    first = rows[0]
    assert first["task"] == "arithmetic"
    a, b = first["info"]["a"], first["info"]["b"]
    first["completions"][:2] = [AHA.format(a=a, b=b, wrong=a + b + 1, right=a + b), HOSTILE]
    first["extracted"][:2] = [str(a + b), None]
    first["correct"][:2] = [1, 0]
    samples.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    run_eval(cfg)  # every prompt is done: resumes without sampling, rewrites results and report
    by_task: dict[str, list[dict]] = {}
    for row in rows:
        by_task.setdefault(row["task"], []).append(row)
    return tmp / "ev" / "report.html", by_task


def _expected(rows, query=""):
    """Per filter, the samples of `rows` the browser must show for `query` (all fit under the cap)."""
    counts = {"all": 0, "correct": 0, "wrong": 0, "aha": 0}
    for row in rows:
        for text, ok, aha in zip(row["completions"], row["correct"], row_ahas(row)):
            if query.lower() not in f"{row['prompt']}\n{text}".lower():
                continue
            counts["all"] += 1
            counts["correct" if ok else "wrong"] += 1
            counts["aha"] += aha is not None
    return counts


def test_sample_browser_filters_and_searches_in_a_real_browser(chromium, report):
    path, by_task = report
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())

        def shown() -> int:
            listed = page.locator("#sample-list .sample").count()
            assert int(page.locator("#sample-count").get_attribute("data-shown")) == listed
            return listed

        def click(name: str) -> None:
            page.click(f'#sample-filters button[data-filter="{name}"]')

        for task in ("arithmetic", "countdown"):
            page.select_option("#sample-task", task)
            expected = _expected(by_task[task])
            for name in ("correct", "wrong", "aha", "all"):
                click(name)
                assert shown() == expected[name], (task, name)
        assert expected["all"] == 6 * 4

        page.select_option("#sample-task", "arithmetic")
        assert _expected(by_task["arithmetic"])["aha"] >= 1
        click("aha")
        assert page.locator("#sample-list .sample.aha mark").first.inner_text() == "wait"

        query = "CHECK THE CARRIES"  # case ignored
        page.fill("#sample-search", query)
        expected = _expected(by_task["arithmetic"], query)
        assert expected["all"] >= 1
        for name in ("aha", "wrong", "correct", "all"):
            click(name)
            assert shown() == expected[name], (query, name)

        page.fill("#sample-search", "unique-hostile-marker")
        assert shown() == 1
        assert page.locator("#sample-list pre").first.text_content() == HOSTILE  # shown as text, never run
        assert page.evaluate("window.pwned") is None
        page.fill("#sample-search", "")
        assert shown() == 6 * 4

        assert page.locator('img[alt="training_reflective_words.png"]').count() == 1
        browser.close()
    assert errors == []
    assert requests and all(url == path.as_uri() or url.startswith("data:") for url in requests), requests
