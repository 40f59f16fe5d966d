"""The composite instruction and where each part of it sits among the text tokens
(docs/ALGORITHM.md §5 "The composite instruction and its tokens")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InstructionError
from .settings import Instruction


# Words that are rarely what an instruction acts on: verbs of editing, articles, prepositions,
# pronouns, colours and other adjectives that usually name the change rather than the place.
NOT_KEYWORDS = frozenset("""
a an the this that these those it its it's his her hers him he she they them their there here
of in on at to from with into onto over under behind above below near next by for and or but as
like so very more less much some all any each every one two three other another
make made turn change changed add put give replace remove removing let set paint colour color
convert transform swap have has had be is are was were been being get do does can could should
would will please now instead just also too then
what where which who whose how
look looks looking appear appears become becomes into
red orange yellow green blue purple pink brown black white grey gray gold golden silver dark
light bright new old big small bigger smaller large tiny tall short
""".split())


def instruction_words(text: str) -> list[str]:
    """The distinct lower-cased words of a text, in order."""
    return list(dict.fromkeys(re.findall(r"\w+", text.lower())))


def keyword_choices(text: str) -> list[str]:
    """The words of a text that may name what it acts on, in order: no NOT_KEYWORDS, numbers or
    one-letter pieces (the "s" of "cat's")."""
    return [word for word in instruction_words(text)
            if word not in NOT_KEYWORDS and len(word) > 1 and not word.isdigit()]


def keyword_pattern(keyword: str) -> re.Pattern:
    return re.compile(r"(?<!\w)" + re.escape(keyword.strip()) + r"(?!\w)", re.IGNORECASE)


def find_keyword(instruction: Instruction, piece: str | None = None) -> re.Match | None:
    """The keyword's first whole-word occurrence in the instruction (None: whole image)."""
    if instruction.keyword is None:
        return None
    match = keyword_pattern(instruction.keyword).search(piece if piece is not None else instruction.text)
    if match is None:
        words = ", ".join(instruction_words(instruction.text))
        raise InstructionError(
            f'"{instruction.keyword.strip()}" is not a word of "{instruction.text.strip()}": '
            f"choose one of: {words}."
        )
    return match


def composite_pieces(instructions: list[Instruction]) -> list[str]:
    """Each sub-instruction stripped; all but the last end in . ! or ? (a "." is added)."""
    pieces = [instruction.text.strip() for instruction in instructions]
    for i, piece in enumerate(pieces[:-1]):
        if not piece.endswith((".", "!", "?")):
            pieces[i] = piece + "."
    return pieces


@dataclass(frozen=True)
class PromptLayout:
    """The text given to the model and, per sub-instruction, its token positions
    (SOT at position 0) and its keyword's token positions (None for the whole image)."""

    text: str
    spans: tuple[range, ...]
    keyword_tokens: tuple[tuple[int, ...] | None, ...]
    token_count: int  # including SOT and EOT


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False, verbose=False).input_ids)  # no length warning: we say it


def count_tokens(tokenizer, instructions: list[Instruction]) -> int:
    """Tokens of the composite instruction, SOT and EOT included."""
    if not instructions:
        return 2
    return 2 + sum(len(_ids(tokenizer, piece)) for piece in composite_pieces(instructions))


def layout_prompt(tokenizer, instructions: list[Instruction]) -> PromptLayout:
    if not instructions:
        raise InstructionError("Write at least one instruction.")
    pieces = composite_pieces(instructions)
    text = " ".join(pieces)
    piece_ids = [_ids(tokenizer, piece) for piece in pieces]
    joined = [token for ids in piece_ids for token in ids]
    if joined != _ids(tokenizer, text):
        raise InstructionError(
            "These instructions could not be split into separate parts for the model: "
            "end each one with a full stop and try again."
        )
    limit = tokenizer.model_max_length
    if len(joined) > limit - 2:
        counts = ", ".join(str(len(ids)) for ids in piece_ids)
        raise InstructionError(
            f"The instructions are too long: {len(joined)} tokens ({counts} per instruction), "
            f"the model reads at most {limit - 2}. Shorten or remove one."
        )
    spans, keywords, start = [], [], 1
    for instruction, piece, ids in zip(instructions, pieces, piece_ids):
        spans.append(range(start, start + len(ids)))
        keywords.append(_keyword_positions(tokenizer, instruction, piece, ids, start))
        start += len(ids)
    return PromptLayout(text, tuple(spans), tuple(keywords), len(joined) + 2)


def _keyword_positions(tokenizer, instruction, piece, ids, start) -> tuple[int, ...] | None:
    if instruction.keyword is None:
        return None
    match = find_keyword(instruction, piece)
    offset = len(_ids(tokenizer, piece[: match.start()]))
    keyword_ids = _ids(tokenizer, match.group(0))
    if not keyword_ids or ids[offset : offset + len(keyword_ids)] != keyword_ids:
        raise InstructionError(
            f'The keyword "{match.group(0)}" cannot be told apart from the words around it '
            f'in "{instruction.text.strip()}": choose another word.'
        )
    return tuple(range(start + offset, start + offset + len(keyword_ids)))
