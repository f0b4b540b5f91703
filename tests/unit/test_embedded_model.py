"""The shipped base model: loads offline, Qwen2, short prompts, tags that survive decoding."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from r1kit.models.embedded import EMBEDDED_MODEL_DIR, TAGS
from r1kit.rewards.extract import extract_answer
from r1kit.tasks import load_task
from r1kit.templates import render_prompt


@pytest.fixture
def one_thread():
    # Two OpenMP threads on a busy 2-core machine spin against each other (10x slower); one is enough.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR)


@pytest.fixture(scope="module")
def model():
    return AutoModelForCausalLM.from_pretrained(EMBEDDED_MODEL_DIR).eval()


def test_files_are_a_small_qwen2_directory_and_a_quarter_sized_student(model):
    from r1kit.models.embedded import EMBEDDED_STUDENT_DIR

    assert (EMBEDDED_MODEL_DIR / "config.json").is_file()
    weights = EMBEDDED_MODEL_DIR / "model.safetensors"
    assert weights.stat().st_size < 8 * 2**20  # a few MB, fine to ship in the wheel
    assert model.config.model_type == "qwen2"
    assert model.config.tie_word_embeddings
    teacher = sum(p.numel() for p in model.parameters())
    assert 0.5e6 < teacher < 3e6
    student = AutoModelForCausalLM.from_pretrained(EMBEDDED_STUDENT_DIR)
    assert 0.2 < sum(p.numel() for p in student.parameters()) / teacher < 0.35
    same_tokenizer = (EMBEDDED_STUDENT_DIR / "tokenizer.json").read_bytes()
    assert same_tokenizer == (EMBEDDED_MODEL_DIR / "tokenizer.json").read_bytes()


def test_the_chat_template_is_r1s(tokenizer):
    turns = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "<think>问候</think> 你好！"}]
    text = tokenizer.apply_chat_template(turns, tokenize=False)
    assert text == "<|user|>你好<|assistant|><think>问候</think> 你好！<|endoftext|>"
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                           add_generation_prompt=True)
    assert prompt == "<|user|>hi<|assistant|>"
    assert {"<|user|>", "<|assistant|>"} <= set(tokenizer.all_special_tokens)


def test_tags_are_plain_added_tokens_that_survive_skip_special_tokens(tokenizer):
    special = set(tokenizer.all_special_tokens)
    for tag in TAGS:
        assert tag not in special
        assert len(tokenizer(tag, add_special_tokens=False)["input_ids"]) == 1
    completion = " <think>7+5=12,4+8+1=13,3+2+1=6</think> <answer>632</answer>"
    ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert tokenizer.decode(ids, skip_special_tokens=True) == completion
    assert extract_answer(tokenizer.decode(ids, skip_special_tokens=True)) == "632"


def test_special_tokens_and_padding(tokenizer):
    assert tokenizer.eos_token_id is not None
    assert tokenizer.pad_token_id is not None
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.padding_side == "left"


@pytest.mark.parametrize(
    "text",
    [
        " <think>7+5=12,4+8=12 wait, 4+8+1=13,3+2+1=6</think> <answer>632</answer>",
        " <answer>1000</answer>",
        " <think>12-7=5,5+3=8</think> The answer is 8.",
        "  two  spaces, tabs\tand\nnewlines <answer> 9 </answer> Done.",
    ],
)
def test_decode_encode_round_trips(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_digits_are_single_tokens(tokenizer):
    for number in ["0123456789", "347", "1000000"]:
        tokens = tokenizer.tokenize(number)
        assert tokens == list(number)


def test_templated_prompts_are_short(tokenizer):
    # The template alone is ~330 characters; BPE merges its words, so RL prompts stay cheap.
    for task, limit in (("arithmetic", 100), ("countdown", 120)):
        for e in load_task(task, "test", n=20):
            ids = tokenizer(render_prompt(e.prompt, "r1_zero"), add_special_tokens=False)["input_ids"]
            assert len(ids) < limit


def test_greedy_completion_is_well_formed(model, tokenizer, one_thread):
    prompts = [render_prompt(e.prompt, "r1_zero") for e in load_task("arithmetic", "test", n=4)]
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**enc, do_sample=False, max_new_tokens=48, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    # Loose: the base model is imperfect by design, but it speaks the template's language.
    answers = [extract_answer(t) for t in texts]
    assert sum(a is not None and a.isdigit() for a in answers) >= 2, texts


def test_corpus_comes_from_train_problems_only():
    from r1kit.models.corpus import CorpusMix, make_corpus

    docs = make_corpus(seed=0, num_docs=3000, mix=CorpusMix())
    assert len(docs) == 3000
    test_prompts = {render_prompt(e.prompt, "r1_zero") for t in ("arithmetic", "arithmetic_zh", "countdown")
                    for e in load_task(t, "test")}
    assert not test_prompts & {d.prompt for d in docs}
    plain = "\n".join(d.text for d in docs if not d.prompt)
    for task in ("factual_qa", "writing"):
        held_out = [e.prompt for e in load_task(task, "test")]
        assert not [q for q in held_out if q in plain], task  # the facts are there, the test questions not
    assert any("等于多少" in d.prompt for d in docs) and any(d.prompt.endswith("each number once. Assistant:")
                                                         for d in docs)
    assert any("wait, let me check the carries" in d.text for d in docs)
    assert any("等等，让我检查进位" in d.text for d in docs)


def test_rebuild_is_deterministic_at_small_scale(tmp_path, one_thread):
    # Same seed and thread count -> byte-identical weights and tokenizer (a few steps stand in for
    # the full build, which runs the same code for a few minutes).
    from r1kit.models.corpus import CorpusMix
    from r1kit.models.embedded import PretrainConfig, build

    cfg = PretrainConfig(hidden_size=32, num_layers=1, num_heads=2, ffn_size=64, num_docs=96, batch_size=8,
                         warmup_steps=2, bucket=2)
    for name in ("a", "b"):
        build(tmp_path / name, seed=3, cfg=cfg, mix=CorpusMix(), student=cfg)
    for model in ("embedded", "embedded-student"):
        for file in ("model.safetensors", "tokenizer.json", "config.json"):
            assert (tmp_path / "a" / model / file).read_bytes() == (tmp_path / "b" / model / file).read_bytes(), file
