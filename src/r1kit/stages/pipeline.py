"""`r1kit pipeline`: the whole DeepSeek-R1 system in miniature, one command (R1-SPEC sections 1-4).

    zero -> cold_start -> dev1 -> dev2 -> rs -> dev3 -> rm -> r1 -> distill -> student_rl
    (+ ablations: dev2_nolang, r1_all_steps)

Each stage is one or more runs of the other commands (`STAGES`), in `out_dir/NN-name/`, with the paths
that wire it to earlier stages set here and its own settings from `DEFAULTS` and the config's section
of that name. Every model is evaluated alike (`evaluation.table`: the `r1kit eval` protocol, reasoning
and general prompts, English and Chinese). A stage ends by writing `stage.json` (its settings' hash,
the hashes of the inputs it read, its seconds and measures): a stage with one is skipped, and refused
when its settings or inputs have changed since. A stage killed part-way is resumed by its runs' own run
directories, which resume exactly, so a rerun of the same command ends with the same table.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1kit.config import ConfigError, EvalRunConfig, PipelineConfig, build_config, to_dict
from r1kit.evaluation import table as tables
from r1kit.tasks.files import jsonl_lines
from r1kit.trainers.checkpoint import MetricsLog, write_atomic
from r1kit.trainers.record import check_resume
from r1kit.trainers.run_dir import SUMMARY

ORDER = ("zero", "cold_start", "dev1", "dev2", "rs", "dev3", "rm", "r1", "distill", "student_rl",
         "dev2_nolang", "r1_all_steps")
ABLATIONS = ("dev2_nolang", "r1_all_steps")
NEEDS = {"zero": (), "cold_start": ("zero",), "dev1": ("cold_start",), "dev2": ("dev1",), "rs": ("dev2",),
         "dev3": ("rs",), "rm": ("rs",), "r1": ("dev3", "rm"), "distill": ("r1",), "student_rl": ("distill",),
         "dev2_nolang": ("dev1",), "r1_all_steps": ("dev3", "rm")}
WHAT = {"zero": "R1-Zero", "cold_start": "the cold-start data", "dev1": "Dev1 (the base on the cold start)",
        "dev2": "Dev2 (reasoning RL from Dev1)", "rs": "the rejection-sampled and non-reasoning data",
        "dev3": "Dev3 (the base on the rejection-sampled data)", "rm": "the reward models",
        "r1": "R1 (all-scenario RL from Dev3)", "distill": "the distilled student",
        "student_rl": "R1-Zero on the student", "dev2_nolang": "Dev2 without the language reward",
        "r1_all_steps": "R1 with the reward models for all steps"}

_GENERAL = ("factual_qa", "writing", "translation", "chitchat")
DEFAULTS: dict[str, dict[str, Any]] = {
    "zero": {"steps": 60, "save_every": 20, "task": {"eval_size": 128}, "eval": {"every": 0, "samples": 4}},
    "cold_start": {},
    "dev1": {},
    "dev2": {"steps": 20, "save_every": 10, "rewards": {"accuracy": 1.0, "language_consistency": 1.0,
                                                        "readable_format": 0.2},
             "task": {"name": "arithmetic_bilingual", "template": "r1", "eval_size": 128},
             "rollout": {"temperature": 1.0, "max_new_tokens": 160},
             "eval": {"every": 5, "samples": 4, "max_new_tokens": 160}},
    "rs": {"tasks": "arithmetic,arithmetic_zh", "template": "r1", "k": 8, "keep": 4, "limit": 300},
    "preferences": {},
    "dev3": {"epochs": 2},
    "rm": {},
    "r1": {"steps": 40, "save_every": 10, "task": {"template": "r1", "eval_size": 12},
           "rollout": {"temperature": 0.7, "max_new_tokens": 160},
           "eval": {"every": 10, "samples": 4, "max_new_tokens": 160},
           "tasks": [{"name": "arithmetic_bilingual", "weight": 3, "eval_size": 64,
                      "rewards": {"accuracy": 1.0, "language_consistency": 1.0}},
                     *({"name": t, "weight": 1, "rewards": {"helpful": 1.0}, "last_steps": 9} for t in _GENERAL),
                     {"name": "harmful", "weight": 1, "rewards": {"harmless": 1.0}, "last_steps": 9}],
           "reward_models": {"helpful": {"apply_to": "summary", "normalize": True, "last_steps": 9},
                             "harmless": {"apply_to": "full", "normalize": True, "last_steps": 9}}},
    "distill": {"limit": 1000, "k": 4, "keep": 2, "max_new_tokens": 160, "eval_size": 32, "eval_samples": 4},
    "student_rl": {"steps": 300, "save_every": 20, "task": {"eval_size": 128}, "eval": {"every": 0, "samples": 4}},
    "dev2_nolang": {"rewards": {"accuracy": 1.0, "readable_format": 0.2}},
    "r1_all_steps": {},
}
"""Each stage's settings in the pipeline (on top of its command's defaults), sized so that the main line
fits 20 minutes on 2 cores; the config's section of the same name goes on top of these."""


@dataclass
class Plan:
    """What one stage runs: its commands' configs in order, the earlier outputs it reads, and the models
    it evaluates (label -> (model directory, template))."""

    dir: Path
    runs: list[tuple[str, Any]]
    inputs: list[Path]
    evals: dict[str, tuple[str, str]] = field(default_factory=dict)


REPLACED = ("rewards", "max_new_tokens", "temperature", "kl_coef")
"""Mappings that are one value, replaced whole by a section (a reward left out is a reward dropped; a step
schedule is one schedule, `r1kit.schedules`)."""


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`top` over `base`, config sections merged key by key; lists, values and `REPLACED` maps replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        deep = isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key not in REPLACED
        out[key] = merge(out[key], value) if deep else copy.deepcopy(value)
    return out


def stage_dir(root: Path, name: str) -> Path:
    return root / f"{ORDER.index(name) + 1:02d}-{name}"


def settings(cfg: PipelineConfig, name: str) -> dict[str, Any]:
    """A stage's own settings: DEFAULTS, then the config's section (ablations start from their stage's)."""
    if name == "dev2_nolang":
        return merge(merge(settings(cfg, "dev2"), DEFAULTS[name]), cfg.dev2_nolang)
    if name == "r1_all_steps":
        r1 = settings(cfg, "r1")
        r1["tasks"] = [{k: v for k, v in t.items() if k != "last_steps"} for t in r1.get("tasks", [])]
        r1["reward_models"] = {n: {k: v for k, v in spec.items() if k != "last_steps"}
                               for n, spec in r1.get("reward_models", {}).items()}
        return merge(merge(r1, DEFAULTS[name]), cfg.r1_all_steps)
    return merge(DEFAULTS[name], getattr(cfg, name))


def _wired(section: str, own: Mapping[str, Any], wiring: Mapping[str, Any]) -> dict[str, Any]:
    """`wiring` over `own`; a wired key the user set is refused (the pipeline decides what feeds a stage)."""
    def keys(d: Mapping[str, Any], prefix: str = "") -> set[str]:
        return {k2 for k, v in d.items() for k2 in (keys(v, f"{prefix}{k}.") if isinstance(v, Mapping) and v
                                                     else {f"{prefix}{k}"})}
    clash = sorted(k for k in keys(own) if k in keys(wiring) and k not in {"seed"})
    if clash:
        raise ConfigError(f"{section}.{clash[0]} is set by the pipeline (it wires the stages together); "
                          "run that stage's own command to choose it")
    return merge(own, wiring)


def plan(cfg: PipelineConfig, name: str, root: Path, seed: int, records: Mapping[str, dict[str, Any]]) -> Plan:
    """The runs of stage `name` under `root`; `records`: the stage.json of finished stages."""
    from r1kit.stages import STAGES

    d = stage_dir(root, name)
    inp = {n: stage_dir(root, n) for n in ORDER}

    def make(command: str, section: str, own: Mapping[str, Any], wiring: dict[str, Any]) -> tuple[str, Any]:
        raw = _wired(section, own, {"seed": seed, **wiring})
        return command, build_config(STAGES[command].config, raw, prefix=f"{section}.")

    own = settings(cfg, name)
    if name == "zero":
        return Plan(d, [make("zero", name, own, {"out_dir": str(d), "model": {"path": "embedded"}})], [],
                    {"r1_zero": (str(d / "model"), "r1_zero")})
    if name == "cold_start":
        zero = inp["zero"] / "model"
        return Plan(d, [make("cold-start", name, own, {"out_dir": str(d), "zero_model": str(zero)})], [zero])
    if name in ("dev1", "dev3"):
        data = [inp["cold_start"] / "data.jsonl"] if name == "dev1" else \
            [inp["rs"] / "sample" / "data.jsonl", inp["rs"] / "preferences" / "sft.jsonl"]
        run = make("sft", name, own, {"out_dir": str(d), "model": {"path": "embedded"},
                                      "data": [{"path": str(p)} for p in data]})
        return Plan(d, [run], data, {name: (str(d / "model"), "r1")})
    if name in ("dev2", "dev2_nolang"):
        start = inp["dev1"] / "model"
        run = make("grpo", name, own, {"out_dir": str(d), "model": {"path": str(start)}})
        return Plan(d, [run], [start], {name: (str(d / "model"), "r1")})
    if name == "rs":
        start = inp["dev2"] / "model"
        return Plan(d, [make("sample", name, own, {"out_dir": str(d / "sample"), "model": {"path": str(start)}}),
                        make("preferences", "preferences", settings(cfg, "preferences"),
                             {"out_dir": str(d / "preferences")})], [start])
    if name == "rm":
        prefs = inp["rs"] / "preferences"
        runs = [make("rm", name, own, {"out_dir": str(d / kind), "data": [{"path": str(prefs / f"{kind}.jsonl")}],
                                       "eval_data": [{"path": str(prefs / f"{kind}_gold.jsonl")}]})
                for kind in ("helpful", "harmless")]
        return Plan(d, runs, [prefs / f"{k}{s}.jsonl" for k in ("helpful", "harmless") for s in ("", "_gold")])
    if name in ("r1", "r1_all_steps"):
        start, rms = inp["dev3"] / "model", {k: inp["rm"] / k / "model" for k in ("helpful", "harmless")}
        used = own.get("reward_models", {})
        r1_wiring = {"out_dir": str(d), "model": {"path": str(start)},
                     "reward_models": {k: {"path": str(p)} for k, p in rms.items() if k in used}}
        return Plan(d, [make("grpo", name, own, r1_wiring)], [start, *rms.values()], {name: (str(d / "model"), "r1")})
    if name == "distill":
        teacher = inp["r1"] / "model"
        run = make("distill", name, own, {"out_dir": str(d), "teacher": str(teacher), "teacher_template": "r1"})
        return Plan(d, [run], [teacher], {"distill": (str(d / "sft" / "model"), "r1"),
                                          "base": (run[1].student, "r1_zero")})
    if name == "student_rl":  # the same student as distill's, R1-Zero on it for the distillation's time
        student: str = build_config(STAGES["distill"].config, settings(cfg, "distill"), prefix="distill.").student
        budget = records.get("distill", {}).get("train_seconds") if cfg.student_rl_matches_distill else None
        wiring: dict[str, Any] = {"out_dir": str(d), "model": {"path": student}}
        if budget is not None:
            wiring["max_wall_seconds"] = round(float(budget), 1)
        return Plan(d, [make("zero", name, own, wiring)], [], {"rl": (str(d / "model"), "r1_zero")})
    raise ConfigError(f"unknown stage {name!r}")


def selected(cfg: PipelineConfig) -> list[str]:
    """The stages to run, in pipeline order; an unknown name is refused."""
    if cfg.stages.strip() == "all":
        return [n for n in ORDER if cfg.ablations or n not in ABLATIONS]
    names = [s.strip() for s in cfg.stages.split(",") if s.strip()]
    unknown = [n for n in names if n not in ORDER]
    if unknown or not names:
        raise ConfigError(f"unknown stage {unknown[0] if unknown else '(none)'!r} in stages=; choose from all, "
                          f"{', '.join(ORDER)}")
    if cfg.ablations:
        names += [a for a in ABLATIONS if a not in names]
    return [n for n in ORDER if n in names]


def digest(path: Path) -> str:
    """sha256 of a file, or of a directory's files (relative names and bytes, in sorted order)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        h.update(str(p.relative_to(path) if p != path else p.name).encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _settings_hash(p: Plan, cfg: PipelineConfig, root: Path) -> str:
    """The hash of a stage's settings, its paths relative to `root` (a moved out_dir keeps its hashes)."""
    data = [[command, to_dict(c)] for command, c in p.runs] + [to_dict(cfg.eval), sorted(p.evals.items())]
    text = json.dumps(data, sort_keys=True, default=str).replace(json.dumps(str(root))[1:-1], "$OUT")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _key(path: Path, root: Path) -> str:
    """An input's name in stage.json: relative to the seed's directory."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _records(root: Path) -> dict[str, dict[str, Any]]:
    """The stage.json of every finished stage under `root`, by stage name."""
    return {n: r for n in ORDER if (r := _record(stage_dir(root, n))) is not None}


def _record(d: Path) -> dict[str, Any] | None:
    path = d / "stage.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_pipeline(cfg: PipelineConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run the chosen stages for every seed, then write table.json, table.md and report.html."""
    if cfg.seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {cfg.seeds}")
    names = selected(cfg)
    out = Path(cfg.out_dir).resolve()  # one spelling of every path, however out_dir was written
    roots = [out, *(out / f"seed-{cfg.seed + i}" for i in range(1, cfg.seeds))]
    for root, seed in zip(roots, range(cfg.seed, cfg.seed + cfg.seeds), strict=True):
        _check_inputs(cfg, names, root, seed)
    times: dict[str, float] = {}
    for root, seed in zip(roots, range(cfg.seed, cfg.seed + cfg.seeds), strict=True):
        for name in names:
            seconds = run_stage(cfg, name, root, seed, progress=progress)
            label = name if cfg.seeds == 1 else f"{name} (seed {seed})"
            times[label] = seconds
            _say(f"{name}: {seconds:.0f} s" + (f" (seed {seed})" if cfg.seeds > 1 else ""))
    table = tables.mean_table([build_table(cfg, root) for root in roots])
    plots = pipeline_plots(roots[0], out / "plots")
    tables.write_tables(out, table, times, plots)
    summary = {"table": table, "seconds": times, "total_seconds": sum(times.values()),
               "findings": [{"finding": t, "holds": h, "numbers": n} for t, h, n in tables.findings(table)]}
    write_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _check_inputs(cfg: PipelineConfig, names: list[str], root: Path, seed: int) -> None:
    """Before any work: every stage's config builds, and every stage's inputs are finished or run first."""
    records = _records(root)
    from r1kit.stages.grpo import check_windows

    for name in names:
        for command, run_cfg in plan(cfg, name, root, seed, records).runs:  # config errors now, in one line
            if command in ("zero", "grpo"):
                check_windows(run_cfg)
        for need in NEEDS[name]:
            if need not in names and need not in records:
                raise ConfigError(f"stage {name} needs {WHAT[need]}, which {stage_dir(root, need)} does not hold "
                                  f"(a finished stage writes stage.json): add {need} to stages= or run it first")


def run_stage(cfg: PipelineConfig, name: str, root: Path, seed: int, *, progress: bool) -> float:
    """Run (or skip, when finished with the same settings and inputs) one stage; returns its seconds."""
    from r1kit.stages import STAGES

    records = _records(root)
    p = plan(cfg, name, root, seed, records)
    key = _settings_hash(p, cfg, root)
    done = records.get(name)
    if done is not None:
        if done["settings"] != key:
            raise ConfigError(f"{p.dir} was made with other settings: use another out_dir, or delete it and the "
                              "stages after it")
        changed = [str(i) for i in p.inputs if i.exists() and done["inputs"].get(_key(i, root)) != digest(i)]
        if changed:
            raise ConfigError(f"{p.dir} was made from other inputs ({changed[0]} changed since): delete it and the "
                              "stages after it to redo them")
        _say(f"{name}: finished earlier, skipped")
        return float(done["seconds"])
    started = time.perf_counter()
    _say(f"{name}: {WHAT[name]} -> {p.dir}")
    summaries = []
    for command, run_cfg in p.runs:
        finished = Path(run_cfg.out_dir) / SUMMARY
        if finished.is_file():  # done before a kill: read, not rerun (its summary keeps its own times)
            check_resume(Path(run_cfg.out_dir), run_cfg)
            summaries.append(json.loads(finished.read_text()))
            continue
        summaries.append(STAGES[command].run(run_cfg, progress=progress))
    measures = {label: evaluate_model(model, template, p.dir / f"eval-{label}", cfg, seed, progress=progress)
                for label, (model, template) in p.evals.items()}
    seconds = time.perf_counter() - started
    record = {"stage": name, "settings": key, "inputs": {_key(i, root): digest(i) for i in p.inputs},
              "seconds": seconds, "measures": measures, "train_seconds": _train_seconds(name, summaries)}
    write_atomic(p.dir / "stage.json", json.dumps(record, indent=2) + "\n")
    return seconds


def _train_seconds(name: str, summaries: list[dict[str, Any]]) -> float | None:
    """The distillation's wall time (teacher sampling, student SFT and its own evaluations): the RL
    student's budget in Table 6's comparison."""
    return float(summaries[0]["seconds"]["total"]) if name == "distill" else None


def evaluate_model(model: str, template: str, out: Path, cfg: PipelineConfig, seed: int, *,
                   progress: bool) -> dict[str, float]:
    """M for one model: `r1kit eval` on the reasoning and the general tasks (resumable), then the measures."""
    from r1kit.evaluation.benchmarks import load_benchmark
    from r1kit.evaluation.protocol import run_eval
    from r1kit.models.loading import load_tokenizer

    e = cfg.eval
    helpful = [t.strip() for t in e.helpful_tasks.split(",") if t.strip()]
    harmless = [t.strip() for t in e.harmless_tasks.split(",") if t.strip()]
    reasoning = [t.strip() for t in e.reasoning_tasks.split(",") if t.strip()]
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {"reasoning": {}, "general": {}}
    # One evaluation per task: a general task with fewer held-out prompts than the limit gives all it has.
    for part, task, limit, k in [*(("reasoning", t, e.reasoning_limit, e.k) for t in reasoning),
                                 *(("general", t, e.general_limit, e.general_k) for t in helpful + harmless)]:
        run_cfg = EvalRunConfig(model=model, tasks=task, k=k, temperature=e.temperature, top_p=e.top_p,
                                max_new_tokens=e.max_new_tokens, template=template,  # type: ignore[arg-type]
                                limit=min(limit, len(load_benchmark(task))), out_dir=str(out / task), seed=seed)
        log = (lambda line: _say(f"eval {out.name}: {line}")) if progress else None
        run_eval(run_cfg, progress=log)
        rows[part].update(read_samples(out / task / "samples.jsonl"))
    tokenizer = load_tokenizer(model)
    return tables.model_metrics(rows["reasoning"], rows["general"], helpful_tasks=helpful, harmless_tasks=harmless,
                                count_tokens=lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"]))


def read_samples(path: Path) -> dict[str, list[dict[str, Any]]]:
    """samples.jsonl of `r1kit eval` by task, in prompt order (a row written again after a kill wins)."""
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    for line in jsonl_lines(path.read_text(encoding="utf-8")):
        row = json.loads(line)
        by_key[(row["task"], row["index"])] = row
    out: dict[str, list[dict[str, Any]]] = {}
    for (task, _), row in sorted(by_key.items(), key=lambda kv: kv[0]):
        out.setdefault(task, []).append(row)
    return out


def build_table(cfg: PipelineConfig, root: Path) -> dict[str, Any]:
    """table.json's content for one seed, from the stages' records (None where a stage has not run)."""
    measures = {label: m for record in _records(root).values() for label, m in record["measures"].items()}
    stages = {n: measures.get(n) for n in ("r1_zero", "dev1", "dev2", "dev3", "r1")}
    students = {"base": measures.get("base"), "rl": measures.get("rl"), "distill": measures.get("distill"),
                "teacher": measures.get("r1")}
    hacking: dict[str, dict[str, float] | None] = {}
    for schedule, name in (("window", "r1"), ("all_steps", "r1_all_steps")):
        rows = _rows(stage_dir(root, name))
        if not rows:
            hacking[schedule] = None
            continue
        rm_cfg = settings(cfg, name).get("reward_models", {})
        tasks = [t["name"] for t in settings(cfg, name).get("tasks", [])]
        helpful = [t for t in tasks if t in cfg.eval.helpful_tasks.split(",")]
        harmless = [t for t in tasks if t in cfg.eval.harmless_tasks.split(",")]
        hacking[schedule] = tables.hacking(rows, list(rm_cfg), helpful, harmless)
    return {"stages": stages, "students": students, "hacking": hacking}


def pipeline_plots(root: Path, out: Path) -> list[Path]:
    """The language-reward ablation (Supp. Fig. 4: consistency and accuracy over steps, with and without
    the reward) and stage 4's hacking plots (proxy and gold against sqrt(KL)), for report.html."""
    from r1kit.evaluation.plots import plot_ablation

    runs = {label: _rows(stage_dir(root, name)) for label, name in
            (("with language reward (dev2)", "dev2"), ("without (dev2_nolang)", "dev2_nolang"))}
    plots = [plot_ablation({k: v for k, v in runs.items() if v},
                           {"eval/language_consistency": "language consistency", "eval/pass@1": "held-out pass@1"},
                           out / "language.png", title="stage 2 with and without the language-consistency reward")]
    plots += [stage_dir(root, name) / "plots" / "hacking.png" for name in ("r1", "r1_all_steps")]
    return [p for p in plots if p is not None and p.is_file()]


def _rows(d: Path) -> list[dict[str, Any]]:
    return MetricsLog(d / "metrics.jsonl").rows() if _record(d) is not None else []


def _say(line: str) -> None:
    print(f"r1kit pipeline: {line}", file=sys.stderr, flush=True)
