"""Language consistency: word shares of mixed chains of thought, what is not a word, the target language."""

import time

import pytest

from r1kit.rewards.language import (
    WordCount,
    chain_of_thought,
    count_words,
    detect_language,
    is_mixed,
    language_consistency,
    language_consistency_reward,
    words_by_sentence,
)

ZH_10 = "我们先计算两个数的和。"  # 10 Han characters: 10 words
EN_10 = "Then we check whether the result is really correct here."  # 10 words
FR_8 = "Attendez, je dois vérifier ce calcul encore une fois."  # 9 words, "ce" included
EN_20 = ("Let me think about this problem step by step. First I add the two numbers together, "
         "and then I check the sum.")


def test_half_chinese_half_english_is_half_for_both():
    text = f"<think>{ZH_10}{EN_10}</think><answer>3</answer>"
    assert count_words(text, "zh") == WordCount(target=10, total=20)
    assert language_consistency(text, "zh") == 0.5
    assert language_consistency(text, "en") == 0.5


def test_pure_chinese_with_latex_and_numbers_is_one():
    text = ("<think>设 $x^2 + 2x = 15$，解得 x=3 或 x=-5。因为 x>0，所以 x=3。\\[ \\frac{1}{2} + \\sqrt{2} \\]"
            "验证：$3^2+2\\cdot 3=15$，正确。</think><answer>3</answer>")
    assert language_consistency(text, "zh") == 1.0
    assert language_consistency(text, "en") == 0.0


def test_english_with_a_french_sentence():
    text = f"<think>{EN_20} {FR_8} So the answer to the question is four.</think>"
    # 20 + 8 English words ("I" is a one-letter word, dropped twice) and 9 French ones.
    assert count_words(text, "en") == WordCount(target=28, total=37)
    assert count_words(text, "fr") == WordCount(target=9, total=37)


def test_a_short_sentence_alone_is_too_short_to_judge():
    # "So it is four" (4 words) between French sentences: no verdict, it counts for the target.
    text = f"{FR_8} So it is four. {FR_8}"
    assert count_words(text, "fr") == WordCount(target=22, total=22)
    assert count_words(text, "en") == WordCount(target=4, total=22)
    assert language_consistency(f"<think>{EN_20}</think>", "en") == 1.0


def test_german_and_spanish_sentences_are_not_english():
    german = "Warte, ich muss das noch einmal überprüfen."
    spanish = "Espera, tengo que revisar este cálculo otra vez."
    for foreign in (german, spanish):
        assert language_consistency(f"{EN_20} {foreign}", "en") < 0.8


def test_short_sentences_join_so_one_word_sentences_cannot_hide_a_language():
    # Each sentence alone is too short to identify; joined, they are plainly French.
    text = "Alors. Donc voilà. Vérifions. Le calcul. Encore une fois."
    assert language_consistency(text, "en") == 0.0
    assert language_consistency(text, "fr") == 1.0


def test_empty_and_wordless_text_score_zero():
    assert language_consistency("", "en") == 0.0
    assert language_consistency("<think></think><answer>4</answer>", "zh") == 0.0
    assert language_consistency("$x^2 = 4$, 2 + 2 = 4", "en") == 0.0


def test_code_and_latex_are_not_words():
    code = ("<think>我们写代码：\n```python\nfor item in sorted(values):\n    print(item)\n```\n"
            "然后运行 `print(result)` 看结果。</think>")
    assert language_consistency(code, "zh") == 1.0
    latex = ("<think>苹果有 $\\text{five apples and three pears}$ 个，\\(\\frac{a}{b}\\) 和 $$\\sum_{i} i$$ 都是公式，"
             "\\begin{align} y &= \\text{some words} \\end{align} 结束。</think>")
    assert language_consistency(latex, "zh") == 1.0
    # Variables, points of a figure and function names written without $ are symbols too.
    assert language_consistency("<think>在三角形 ABC 中，sin x = 1 且 n 为整数。</think>", "zh") == 1.0


def test_only_the_chain_of_thought_counts():
    assert language_consistency("<think>这是中文推理。</think><answer>The answer is four.</answer>", "zh") == 1.0
    assert chain_of_thought("我们计算</think> The answer is 4") == "我们计算"  # <think> was in the prompt
    assert chain_of_thought("<think>truncated reasoning") == "truncated reasoning"
    assert chain_of_thought("no tags at all") == "no tags at all"


@pytest.mark.parametrize(("text", "target", "share"), [
    ("<think>これは日本語の文です。</think>", "ja", 1.0),  # Han and kana both count for Japanese
    ("<think>これは日本語の文です。</think>", "zh", 4 / 10),  # Han only for Chinese: 日本語文
    ("<think>이것은 한국어 문장입니다. And English.</think>", "ko", 3 / 5),
    ("<think>Это русский текст.</think>", "ru", 1.0),
    ("<think>Это русский текст.</think>", "zh-CN", 0.0),
])
def test_scripts(text, target, share):
    assert language_consistency(text, target) == pytest.approx(share)


def test_words_by_sentence():
    assert words_by_sentence("Let $x = 3$. 所以 x 是3。") == [[("latin", "Let")], [("han", "所"), ("han", "以"),
                                                                                   ("han", "是")]]


@pytest.mark.parametrize(("prompt", "language"), [
    ("一个三角形的三边长分别为 3、4、5，求它的面积。", "zh"),
    ("三角形の面積を求めなさい。", "ja"),
    ("Quelle est l'aire d'un triangle dont les côtés mesurent 3, 4 et 5 ?", "fr"),
    ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.", "en"),
    ("Wie groß ist die Fläche eines Dreiecks mit den Seiten 3, 4 und 5?", "de"),
    ("Write $\\frac{3}{20}$ as a decimal.", None),  # three words say nothing
    ("347+285", None),
])
def test_detect_language(prompt, language):
    assert detect_language(prompt) == language


def test_reward_target_order():
    zh_cot, en_cot = f"<think>{ZH_10}</think>", f"<think>{EN_10}</think>"
    zh_prompt, en_prompt = "求两个数的和，并说明理由。", "What is the sum of the two numbers, and why?"
    # From the prompt, else the default "en".
    assert language_consistency_reward([zh_prompt, en_prompt, "1+1"], [zh_cot, zh_cot, en_cot]) == [1.0, 0.0, 1.0]
    # One language for all; a column; the example's info.
    assert language_consistency_reward([zh_prompt, en_prompt], [zh_cot, en_cot], language="zh") == [1.0, 0.0]
    assert language_consistency_reward([en_prompt, en_prompt], [zh_cot, en_cot], language=["zh", None]) == [1.0, 1.0]
    assert language_consistency_reward([en_prompt], [zh_cot], info=[{"language": "zh"}]) == [1.0]


def test_reward_never_raises():
    cot = f"<think>{EN_10}</think>"
    assert language_consistency_reward(["q"] * 3, [None, 42, ""], language="en") == [0.0, 0.0, 0.0]
    assert language_consistency_reward(["q"], [cot], language="klingon") == [0.0]
    assert language_consistency_reward([], [cot], language=None) == [0.0]  # no prompt to detect from
    with pytest.raises(ValueError, match="not supported"):
        language_consistency(cot, "xx")


def test_is_mixed():
    assert is_mixed(f"<think>{ZH_10}{EN_10}</think>", "zh")
    assert not is_mixed(f"<think>{ZH_10}</think>", "zh")
    assert not is_mixed("", "en")  # nothing written is not mixed
    assert not is_mixed(f"<think>{ZH_10}{EN_10}</think>", "zh", threshold=0.5)


@pytest.mark.parametrize("text", ["$" + "a" * 50_000, "<think>" * 10_000, "$a " * 10_000, "中" * 50_000])
def test_long_adversarial_text_is_linear(text):
    # A letter run after "$" once took minutes (a number pattern that began with letters*).
    start = time.perf_counter()
    language_consistency(text, "en")
    language_consistency(text, "zh")
    assert time.perf_counter() - start < 2.0
