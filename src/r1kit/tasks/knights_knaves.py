"""Knights and Knaves: logic puzzles with a checkable answer, the logic task of Logic-RL (Xie et al. 2025).

Each puzzle introduces 3 to 8 inhabitants of an island where knights always tell the truth and knaves
always lie, quotes what each one said, and asks who is what. The data are Logic-RL's parquet files
(`Unakar/Logic-RL`, from the K&K puzzles of Xie et al. 2024), laid out as

    <path>/3ppl/train.parquet, <path>/3ppl/test.parquet, <path>/5ppl/..., <path>/7ppl/...

with fields `quiz`, `names`, `solution` (booleans, True = knight) and `solution_text_format`
("(1) Amelia is a knight\\n(2) ..."). `path` is that folder (all sizes, or one with `people`), one
`Nppl` folder, or one parquet file. With no path the puzzles come from the hub through `datasets`:
`K-and-K/knights-and-knaves` (Xie et al.'s release, same fields), config = the split, one hub split per
size (`3ppl`, ...); Logic-RL's sizes 3, 5 and 7 unless `people` names one.

The prompt is the quiz and Logic-RL's request for one statement per person; the reference is
`solution_text_format`, judged by the "knights_knaves" verifier (`r1kit.rewards.logic`) against
`info["names"]` and `info["solution"]`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from r1kit.tasks.files import draw, read_hub
from r1kit.types import Example

NAME = "knights_knaves"
VERIFIER = "knights_knaves"
INSTRUCTION = ("\n\nWhen you reach a conclusion, state the identity of each character in the answer, one per "
               "line, i.e. (1) Zoey is a knight\n(2) ...")
_COLUMNS = ["quiz", "names", "solution", "solution_text_format"]
_SIZE_DIR = re.compile(r"(\d+)ppl")


def load_knights_knaves(split: str, n: int | None = None, seed: int = 0, path: str | Path | None = None,
                        people: int | None = None) -> list[Example]:
    """Puzzles of one split ("train" or "test"), in file order (smallest puzzles first), or `n` of them
    drawn with `seed` (the same seed draws the same puzzles)."""
    if split not in ("train", "test"):
        raise ValueError(f"{NAME} has splits train and test, not {split!r}")
    rows = _read_hub(split, people) if path is None else [
        item for file in _files(Path(path), split, people) for item in _read(file)]
    return draw([make_example(row, where) for where, row in rows], n, seed, f"{NAME} {split} puzzles")


def make_example(row: dict[str, Any], where: str = "row") -> Example:
    """One puzzle's record.

    >>> e = make_example({"quiz": "Q?", "names": ["Ava", "Liam"], "solution": [True, False],
    ...                   "solution_text_format": "(1) Ava is a knight\\n(2) Liam is a knave"})
    >>> e.info["names"], e.info["solution"], e.prompt.startswith("Q?\\n\\n")
    (['Ava', 'Liam'], [True, False], True)
    """
    try:
        quiz, answer = str(row["quiz"]).strip(), str(row["solution_text_format"]).strip()
        names, solution = [str(x) for x in row["names"]], [bool(x) for x in row["solution"]]
    except (KeyError, TypeError) as e:
        raise ValueError(f"{where}: bad puzzle ({e!r}); need fields {', '.join(_COLUMNS)}") from None
    if not quiz or not names or len(names) != len(solution):
        raise ValueError(f"{where}: bad puzzle: empty quiz, or names and solution of different lengths")
    return Example(prompt=quiz + INSTRUCTION, answer=answer, task=NAME, verifier=VERIFIER,
                   info={"names": names, "solution": solution})


def _files(path: Path, split: str, people: int | None) -> list[Path]:
    """The parquet files to read: the file itself, `<dir>/<split>.parquet`, or `<dir>/<k>ppl/<split>.parquet`."""
    if path.is_file():
        return [path]
    if (path / f"{split}.parquet").is_file():
        return [path / f"{split}.parquet"]
    sizes = {int(m.group(1)): d for d in path.glob("*ppl") if (m := _SIZE_DIR.fullmatch(d.name))}
    if people is not None:
        sizes = {k: d for k, d in sizes.items() if k == people}
    files = [sizes[k] / f"{split}.parquet" for k in sorted(sizes) if (sizes[k] / f"{split}.parquet").is_file()]
    if not files:
        which = f"{people}ppl/" if people is not None else "<k>ppl/"
        raise ValueError(f"{NAME} data not found: no {path / which}{split}.parquet")
    return files


HUB_ID = "K-and-K/knights-and-knaves"
HUB_SIZES = (3, 5, 7)  # the sizes of Logic-RL's files


def _read_hub(split: str, people: int | None) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for size in (people,) if people is not None else HUB_SIZES:
        rows += read_hub(HUB_ID, split, split=f"{size}ppl", fix="set a local path")
    return rows


def _read(file: Path) -> list[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq  # here, not at the top: `import r1kit.tasks` stays light

    try:
        rows = pq.read_table(file, columns=_COLUMNS).to_pylist()
    except Exception as e:
        raise ValueError(f"{file}: cannot read the puzzles ({type(e).__name__}: {e})") from None
    return [(f"{file}[{i}]", row) for i, row in enumerate(rows)]
