"""Without a network, hub loads fail in seconds with one line instead of retrying for half a minute."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from tests.conftest import REPO

from r1kit import hub
from r1kit.models.loading import ModelLoadError, resolve_model_path
from r1kit.tasks import load_task

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def _closed_endpoint() -> str:
    """An address where nothing listens: connections to it are refused, as a hub without network is."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def unreachable_hub(monkeypatch):
    for name in OFFLINE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", _closed_endpoint())


def test_data_sets_and_models_fail_at_once_naming_the_fix(unreachable_hub):
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"cannot reach the Hugging Face hub \(127.0.0.1:\d+: Connection refused\) "
                                         r"to load openai/gsm8k \(main, train\): set task.path"):
        load_task("gsm8k", "train")
    with pytest.raises(ModelLoadError, match=r"to load model Qwen/Qwen2\.5-0\.5B: pass a local model directory"):
        resolve_model_path("Qwen/Qwen2.5-0.5B")
    assert time.monotonic() - start < 2 * hub.PROBE_TIMEOUT_S


def test_offline_mode_reads_the_cache_without_probing(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", _closed_endpoint())
    assert hub.hub_unreachable() == ""
    assert resolve_model_path("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"  # the cache is asked next


@pytest.mark.parametrize("offline", [False, True])
def test_the_gsm8k_recipe_without_a_network_fails_within_seconds(tmp_path, offline):
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARS}
    env.update({"HF_ENDPOINT": _closed_endpoint(), "HF_HOME": str(tmp_path / "hf")}, **(
        {"HF_HUB_OFFLINE": "1"} if offline else {}))
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "r1kit.cli", "zero", "--config",
                           str(REPO / "recipes" / "qwen2.5-0.5b" / "zero-gsm8k.yaml"), f"out_dir={tmp_path / 'run'}"],
                          env=env, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - start
    assert done.returncode == 2 and seconds < 10, (seconds, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("r1kit: error: ") and "openai/gsm8k" in done.stderr and "task.path" in done.stderr
    assert not (tmp_path / "run").exists()
