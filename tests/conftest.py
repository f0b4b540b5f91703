"""Shared test setup: no network, few threads, paths to the repository and ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def skip_without_sandbox() -> None:
    """Skip a test that runs code when the sandbox is unavailable here, naming the fix; under CI, fail."""
    from r1kit.sandbox import SandboxUnavailableError, require_sandbox

    try:
        require_sandbox()
    except SandboxUnavailableError as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the code sandbox: {e}")
        pytest.skip(f"code sandbox unavailable (run `r1kit setup-sandbox`): {e}")


@pytest.fixture
def needs_sandbox() -> None:
    skip_without_sandbox()


@pytest.fixture
def shared_data() -> Path:
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return path


def make_tiny_random_model(path: Path, *, seed: int = 0) -> Path:
    """A tiny random Qwen2 model and a character-level tokenizer saved as a standard HF directory.

    It stands in for a real checkpoint (e.g. Qwen2.5-0.5B) on the loading path: same architecture class,
    same from_pretrained calls, a chat template; nothing is downloaded.
    """
    import string

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    chars = sorted(set(string.printable) - set("\x0b\x0c"))
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="?"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"], padding_side="left")
    fast.add_tokens(["<think>", "</think>", "<answer>", "</answer>"])
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_random_model(tmp_path_factory.mktemp("tiny-qwen2"))


def kill_when(cmd: list[str], marker: Path, timeout: float = 300) -> None:
    """Run `cmd` in its own process group and SIGKILL the whole group (torchrun and its ranks, a run and its
    worker threads) as soon as `marker` exists; fails if the command ended first."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if marker.exists():
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"{marker.name} never appeared before the run ended"


@pytest.fixture
def kill_at():
    """`kill_at(cmd, marker)`: see `kill_when`."""
    return kill_when
