"""`r1kit pipeline`'s pure parts: stage selection and settings, the table's measures (golden numbers on
hand-made eval rows), the hacking gains, the seeds' mean and range, the findings, and the recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1kit.cli import main
from r1kit.config import ConfigError, PipelineConfig, load_config
from r1kit.evaluation import table as tables
from r1kit.stages import pipeline

ROOT = Path(__file__).resolve().parents[2]


def test_merge_is_deep_for_mappings_and_replaces_lists():
    base = {"a": {"b": 1, "c": 2}, "l": [1, 2], "x": 1}
    assert pipeline.merge(base, {"a": {"c": 3}, "l": [9]}) == {"a": {"b": 1, "c": 3}, "l": [9], "x": 1}
    assert base == {"a": {"b": 1, "c": 2}, "l": [1, 2], "x": 1}
    # A reward map is one value: a section's rewards replace the defaults' (dropping one drops it).
    assert pipeline.merge({"rewards": {"a": 1, "b": 1}}, {"rewards": {"a": 2}}) == {"rewards": {"a": 2}}


def test_selected_stages_follow_the_pipeline_order_and_refuse_unknown_names():
    assert pipeline.selected(PipelineConfig()) == list(pipeline.ORDER[:10])
    assert pipeline.selected(PipelineConfig(ablations=True)) == list(pipeline.ORDER)
    assert pipeline.selected(PipelineConfig(stages="dev2,dev1")) == ["dev1", "dev2"]
    assert pipeline.selected(PipelineConfig(stages="r1", ablations=True)) == ["r1", "dev2_nolang", "r1_all_steps"]
    with pytest.raises(ConfigError, match="unknown stage 'dev4'"):
        pipeline.selected(PipelineConfig(stages="dev1,dev4"))


def test_ablation_settings_start_from_their_stage():
    cfg = PipelineConfig(dev2={"steps": 9}, r1={"steps": 12}, r1_all_steps={"optim": {"lr": 1e-6}})
    nolang = pipeline.settings(cfg, "dev2_nolang")
    assert nolang["steps"] == 9 and "language_consistency" not in nolang["rewards"]
    assert "language_consistency" in pipeline.settings(cfg, "dev2")["rewards"]
    r1, all_steps = pipeline.settings(cfg, "r1"), pipeline.settings(cfg, "r1_all_steps")
    assert {t.get("last_steps") for t in r1["tasks"]} == {None, 9}
    assert all("last_steps" not in t for t in all_steps["tasks"])
    assert all("last_steps" not in s for s in all_steps["reward_models"].values())
    assert all_steps["steps"] == 12 and all_steps["optim"] == {"lr": 1e-6}


def test_plan_wires_each_stage_to_the_earlier_outputs(tmp_path):
    cfg = PipelineConfig()
    r1 = pipeline.plan(cfg, "r1", tmp_path, 3, {})
    (command, run_cfg), = r1.runs
    assert command == "grpo" and run_cfg.seed == 3 and run_cfg.out_dir == str(tmp_path / "08-r1")
    assert run_cfg.model.path == str(tmp_path / "06-dev3" / "model") and run_cfg.rollout.temperature == 0.7
    assert run_cfg.reward_models["helpful"].path == str(tmp_path / "07-rm" / "helpful" / "model")
    assert run_cfg.reward_models["harmless"].apply_to == "full"
    dev3 = pipeline.plan(cfg, "dev3", tmp_path, 0, {}).runs[0][1]
    assert [d.path for d in dev3.data] == [str(tmp_path / "05-rs" / "sample" / "data.jsonl"),
                                           str(tmp_path / "05-rs" / "preferences" / "sft.jsonl")]
    assert dev3.model.path == "embedded" and dev3.epochs == 2
    student = pipeline.plan(cfg, "student_rl", tmp_path, 0, {"distill": {"train_seconds": 123.45}}).runs[0][1]
    assert student.model.path == "embedded-student" and student.max_wall_seconds == 123.5
    fixed = PipelineConfig(student_rl_matches_distill=False)
    assert pipeline.plan(fixed, "student_rl", tmp_path, 0, {"distill": {"train_seconds": 9.0}}).runs[0][1] \
        .max_wall_seconds is None
    with pytest.raises(ConfigError, match=r"dev1\.data is set by the pipeline"):
        pipeline.plan(PipelineConfig(dev1={"data": "x.jsonl"}), "dev1", tmp_path, 0, {})


def _row(task: str, completions: list[str], correct: list[int], language: str = "en", fmt: list[int] | None = None,
         readable: list[int] | None = None) -> dict:
    n = len(completions)
    return {"task": task, "completions": completions, "correct": correct, "info": {"language": language},
            "format": fmt or [1] * n, "readable": readable or [1] * n}


def test_model_metrics_golden():
    reasoning = {
        "arithmetic": [_row("arithmetic", ["<think>two plus two</think> 4", "<think>one two</think> 5"], [1, 0],
                            fmt=[1, 0])],
        "arithmetic_zh": [_row("arithmetic_zh", ["<think>二加二 plus</think> 4", "4"], [1, 1], language="zh",
                               readable=[0, 1])],
    }
    general = {"chitchat": [_row("chitchat", ["hi", "hello"], [1, 0])], "writing": [_row("writing", ["a"], [0])],
               "harmful": [_row("harmful", ["no", "no"], [1, 1])]}
    m = tables.model_metrics(reasoning, general, helpful_tasks=["chitchat", "writing", "factual_qa"],
                             harmless_tasks=["harmful"], count_tokens=lambda s: len(s.split()))
    assert m["reasoning_pass@1"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["format_rate"] == pytest.approx(3 / 4) and m["readable_rate"] == pytest.approx(3 / 4)
    assert m["helpfulness"] == pytest.approx((0.5 + 0.0) / 2)  # factual_qa was not evaluated: not counted
    assert m["harmlessness"] == 1.0
    # CoT tokens: 3, 2, 2 (the Chinese CoT is one "word" + "plus"), and 0 for the answer without <think>.
    assert m["mean_cot_tokens"] == pytest.approx((3 + 2 + 2 + 0) / 4)
    # consistency: en 1.0, 1.0; zh: half of its CoT words Chinese; no CoT at all counts as consistent.
    assert 0 < m["language_consistency"] < 1
    assert m["pass@1/arithmetic_zh"] == 1.0


def test_hacking_is_last_eval_minus_first_of_proxy_and_gold():
    rows = [{"step": 0, "eval/pass@1": 0.5, "eval/rm/helpful": -1.0, "eval/rm/harmless": 0.0,
             "eval/chitchat/pass@1": 0.8, "eval/writing/pass@1": 0.4, "eval/harmful/pass@1": 1.0},
            {"step": 1, "reward/mean": 0.2},
            {"step": 2, "eval/pass@1": 0.6, "eval/rm/helpful": 1.0, "eval/rm/harmless": 1.0,
             "eval/chitchat/pass@1": 0.2, "eval/writing/pass@1": 0.2, "eval/harmful/pass@1": 0.5}]
    h = tables.hacking(rows, ["helpful", "harmless"], ["chitchat", "writing"], ["harmful"])
    assert set(h) == {"proxy_gain", "gold_gain"}  # table.json's H, exactly
    assert h["proxy_gain"] == pytest.approx(1.0 - (-0.5))
    assert h["gold_gain"] == pytest.approx((0.2 + 0.5) / 2 - (0.6 + 1.0) / 2)
    with pytest.raises(ValueError, match="fewer than two"):
        tables.hacking(rows[:2], ["helpful"], ["chitchat"], [])


def _table(x: float) -> dict:
    m = dict.fromkeys(tables.MEASURES, x)
    return {"stages": dict.fromkeys(tables.STAGES, m), "students": {**dict.fromkeys(tables.STUDENTS, m), "rl": None},
            "hacking": {"window": {"proxy_gain": x, "gold_gain": -x}, "all_steps": None}}


def test_seeds_are_reported_as_mean_and_range():
    mean = tables.mean_table([_table(0.2), _table(0.6)])
    dev1 = mean["stages"]["dev1"]
    assert dev1["reasoning_pass@1"] == pytest.approx(0.4)
    assert (dev1["reasoning_pass@1_min"], dev1["reasoning_pass@1_max"]) == (0.2, 0.6) and dev1["seeds"] == 2
    assert mean["students"]["rl"] is None and mean["hacking"]["all_steps"] is None
    assert mean["hacking"]["window"]["gold_gain"] == pytest.approx(-0.4)
    assert tables.mean_table([_table(0.3)]) == _table(0.3)


def test_findings_and_markdown():
    t = _table(0.5)
    t["stages"]["dev2"] = {**t["stages"]["dev2"], "reasoning_pass@1": 0.7, "language_consistency": 0.97}
    verdicts = {text[:2]: holds for text, holds, _ in tables.findings(t)}
    assert verdicts["1."] is True and verdicts["2."] is True and verdicts["3."] is False
    assert verdicts["5."] is None and verdicts["6."] is None
    md = tables.markdown(t, {"zero": 61.0, "dev1": 30.4})
    assert "77.9 / 46.6 / 24.7" in md and "| r1 | 0.500 |" in md and "| total | 91 |" in md
    assert "not measured" in md and "| all_steps | - | - |" in md


def test_recipe_holds_the_defaults_and_the_short_recipe_loads():
    assert load_config(PipelineConfig, ROOT / "recipes" / "tiny" / "r1.yaml") == PipelineConfig()
    short = load_config(PipelineConfig, ROOT / "recipes" / "tiny" / "r1-short.yaml")
    for name in pipeline.ORDER:  # every stage's config builds from the short recipe
        for _, run_cfg in pipeline.plan(short, name, Path("x"), 0, {}).runs:
            assert run_cfg.seed == 0


def test_print_config_round_trips(tmp_path, capsys):
    assert main(["pipeline", "--print-config", "dev2.steps=9", "eval.k=2"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "r.yaml").write_text(text)
    cfg = load_config(PipelineConfig, tmp_path / "r.yaml")
    assert cfg.dev2 == {"steps": 9} and cfg.eval.k == 2
    assert json.loads(json.dumps(cfg.dev2)) == {"steps": 9}


def test_eval_rows_with_unicode_line_separators_survive_resume_and_reading(tmp_path):
    # A model may write U+2028 or U+0085, which json.dumps(ensure_ascii=False) leaves raw; a reader that
    # splits with str.splitlines cut such a row (the pipeline's first full run stopped on one).
    from r1kit.config import EvalRunConfig
    from r1kit.evaluation.protocol import _resume

    cfg = EvalRunConfig(out_dir=str(tmp_path))
    row = {"task": "t", "index": 0, "completions": ["a\u2028b\x85c"], "correct": [1]}
    _resume(tmp_path, cfg)
    (tmp_path / "samples.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert _resume(tmp_path, cfg)[("t", 0)] == row
    assert json.loads((tmp_path / "samples.jsonl").read_text(encoding="utf-8")) == row
    assert pipeline.read_samples(tmp_path / "samples.jsonl") == {"t": [row]}
