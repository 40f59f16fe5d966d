import pytest

from foi_engine import Instruction, InstructionError
from foi_engine.prompt import composite_pieces, instruction_words, layout_prompt
from foi_engine.tiny import tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False).input_ids


def test_single_instruction_is_passed_as_written(tokenizer):
    layout = layout_prompt(tokenizer, [Instruction("  make the sky a sunset  ", "sky")])
    assert layout.text == "make the sky a sunset"
    assert layout.spans == (range(1, 1 + len(ids(tokenizer, "make the sky a sunset"))),)


def test_composite_pieces_get_full_stops_except_the_last():
    pieces = composite_pieces([Instruction("make the sky a sunset"), Instruction("put a hat on him!"),
                               Instruction("turn the grass green")])
    assert pieces == ["make the sky a sunset.", "put a hat on him!", "turn the grass green"]


def test_spans_follow_sot_contiguously_and_keyword_positions(tokenizer):
    instructions = [Instruction("Make the sky a sunset", "Sky"), Instruction("put a hat on him", "hat"),
                    Instruction("turn the grass green")]
    layout = layout_prompt(tokenizer, instructions)
    assert layout.text == "Make the sky a sunset. put a hat on him. turn the grass green"
    full = tokenizer(layout.text).input_ids
    first = len(ids(tokenizer, "Make the sky a sunset."))
    second = len(ids(tokenizer, "put a hat on him."))
    assert layout.spans[0] == range(1, 1 + first)
    assert layout.spans[1] == range(1 + first, 1 + first + second)
    assert layout.spans[2].stop == len(full) - 1  # EOT follows the last span
    assert [full[p] for p in layout.keyword_tokens[0]] == ids(tokenizer, "sky")
    assert [full[p] for p in layout.keyword_tokens[1]] == ids(tokenizer, "hat")
    assert layout.keyword_tokens[2] is None
    assert layout.token_count == len(full)


def test_keyword_is_a_whole_word_first_occurrence(tokenizer):
    layout = layout_prompt(tokenizer, [Instruction("put a hat on the hatted man and a hat on him", "hat")])
    full = tokenizer(layout.text).input_ids
    assert layout.keyword_tokens[0] == (3,)  # SOT put a [hat]
    assert full[3] == ids(tokenizer, "hat")[0]


def test_multi_word_keyword(tokenizer):
    layout = layout_prompt(tokenizer, [Instruction("give him a straw hat", "straw hat")])
    full = tokenizer(layout.text).input_ids
    assert [full[p] for p in layout.keyword_tokens[0]] == ids(tokenizer, "straw hat")


def test_keyword_not_in_instruction_lists_the_words(tokenizer):
    with pytest.raises(InstructionError, match="choose one of: make, the, sky, a, sunset"):
        layout_prompt(tokenizer, [Instruction("Make the sky a sunset, the sky", "hat")])
    with pytest.raises(InstructionError):
        layout_prompt(tokenizer, [Instruction("put a hat on him", "ha")])  # not a whole word


def test_too_many_tokens_is_an_error_with_counts(tokenizer):
    long = " ".join(["xylophone"] * 14)  # 5 tokens each
    with pytest.raises(InstructionError, match=r"too long: \d+ tokens \(\d+, \d+ per instruction\), .* at most 75"):
        layout_prompt(tokenizer, [Instruction(long), Instruction("make the sky a sunset")])


def test_empty_instruction_is_refused():
    with pytest.raises(InstructionError, match="empty"):
        Instruction("   ")


def test_words_for_the_keyword_picker():
    assert instruction_words("Put a hat on him, a RED hat!") == ["put", "a", "hat", "on", "him", "red"]
