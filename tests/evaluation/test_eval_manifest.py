"""The manifest format and the benchmark importers, on miniature copies of each layout."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from foi_engine.evaluation import importers
from foi_engine.evaluation.groundtruth import encode_pie_rle, load_mask
from foi_engine.evaluation.manifest import ManifestError, guess_keyword, read_manifest, write_manifest


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_manifest_round_trip_and_clear_errors(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"id": "a", "image": "a.png", "instructions": [{"text": "put a hat on the cat", "keyword": "cat"},'
        ' {"text": "make the sky blue", "keyword": null}], "input_caption": "x", "output_caption": "y",'
        ' "mask": {"rle": [0, 4], "size": [2, 2]}, "seed": 3, "note": "kept"}\n\n'
        '{"id": "b", "image": "b.png", "instructions": ["make it snow"]}\n'
    )
    items = read_manifest(path)
    assert [i.id for i in items] == ["a", "b"] and items[0].multi and not items[1].multi
    assert items[0].instructions[0].keyword == "cat" and items[0].instructions[1].keyword is None
    assert items[0].seed == 3 and items[0].extra == {"note": "kept"}
    write_manifest(tmp_path / "copy.jsonl", items)
    assert read_manifest(tmp_path / "copy.jsonl") == items

    for line, message in [
        ('{"id": "a", "image": "a.png"}', 'no "instructions"'),
        ('{"id": "a", "image": "a.png", "instructions": [{"text": "make it red", "keyword": "car"}]}',
         'keyword "car" is not a word'),
        ("{not json", "line 1: not valid JSON"),
        ('{"id": "a", "image": "a.png", "instructions": ["x"]}\n{"id": "a", "image": "b.png", "instructions": ["y"]}',
         'id "a" is used twice'),
    ]:
        path.write_text(line + "\n")
        with pytest.raises(ManifestError, match=message):
            read_manifest(path)
    with pytest.raises(ManifestError, match="no manifest"):
        read_manifest(tmp_path / "absent.jsonl")


def test_keyword_guess():
    assert guess_keyword("put a hat on the dog") == "hat"
    assert guess_keyword("Make the sky red") == "sky"
    assert guess_keyword("turn it into a painting") == "painting"
    assert guess_keyword("make it red") is None


def test_pie_bench(tmp_path, photos):
    root = tmp_path / "PIE-Bench" / "data"
    (root / "annotation_images" / "0_random_140").mkdir(parents=True)
    photos["chelsea"].save(root / "annotation_images" / "0_random_140" / "000000000000.jpg")
    region = np.zeros((512, 512), dtype=bool)
    region[100:200, 50:300] = True
    mapping = {
        "000000000000": {"image_path": "0_random_140/000000000000.jpg",
                         "original_prompt": "a [cat] lying on a sofa", "editing_prompt": "a [dog] lying on a sofa",
                         "editing_instruction": "Change the cat to a dog", "editing_type_id": "1",
                         "blended_word": "cat dog", "mask": encode_pie_rle(region)},
        "000000000001": {"image_path": "0_random_140/000000000001.jpg",
                         "original_prompt": "a slanted mountain bicycle", "editing_prompt": "a slanted [rusty] bicycle",
                         "editing_instruction": "Make the frame of the bike rusty", "editing_type_id": "0",
                         "blended_word": "bicycle bicycle", "mask": [0, 10]},
    }
    (root / "mapping_file.json").write_text(json.dumps(mapping))
    out = tmp_path / "manifests"
    out.mkdir()
    items = importers.pie_bench(root, out)
    write_manifest(out / "pie.jsonl", items)
    first, second = read_manifest(out / "pie.jsonl")
    assert first.id == "pie-000000000000" and first.category == "1_change_object"
    assert first.instructions[0].keyword == "cat" and "keyword_guessed" not in first.extra
    assert first.input_caption == "a cat lying on a sofa" and first.output_caption == "a dog lying on a sofa"
    assert (out / first.image).resolve() == (root / "annotation_images/0_random_140/000000000000.jpg").resolve()
    assert np.array_equal(load_mask(first.mask, out), region)
    # "bicycle" is not a word of the instruction: the keyword is guessed and flagged
    assert second.instructions[0].keyword == "frame" and second.extra["keyword_guessed"] is True


def _magicbrush_session(folder, photos, img_id="139306"):
    folder.mkdir(parents=True)
    photos["coffee"].save(folder / f"{img_id}-input.png")
    photos["chelsea"].save(folder / f"{img_id}-output1.png")
    photos["astronaut"].save(folder / f"{img_id}-output2.png")
    for turn, box in ((1, (0, 0, 20, 20)), (2, (40, 40, 60, 60))):
        mask = Image.new("L", photos["coffee"].size, 0)
        mask.paste(255, box)
        mask.save(folder / f"{img_id}-mask{turn}.png")


def test_magicbrush_test_layout_turns_and_sessions(tmp_path, photos):
    root = tmp_path / "test"
    _magicbrush_session(root / "images" / "139306", photos)
    sessions = {"139306": [
        {"input": "139306-input.png", "mask": "139306-mask1.png", "instruction": "put a hat on the cup",
         "output": "139306-output1.png"},
        {"input": "139306-output1.png", "mask": "139306-mask2.png", "instruction": "make the table wooden",
         "output": "139306-output2.png"}]}
    (root / "edit_sessions.json").write_text(json.dumps(sessions))
    (root / "global_descriptions.json").write_text(json.dumps({"139306": {
        "139306-input.png": "a cup on a table", "139306-output1.png": "a cup with a hat",
        "139306-output2.png": "a cup with a hat on a wooden table"}}))
    items = importers.magicbrush_test(root, tmp_path, "both")
    assert [i.id for i in items] == ["magicbrush-139306-1", "magicbrush-139306-2", "magicbrush-139306"]
    turn2, session = items[1], items[2]
    assert turn2.image.endswith("139306-output1.png")  # turn 2 starts from turn 1's true output
    assert turn2.input_caption == "a cup with a hat" and turn2.target.endswith("output2.png")
    assert session.multi and [i.keyword for i in session.instructions] == ["hat", "table"]
    assert session.image.endswith("input.png") and session.output_caption.endswith("wooden table")
    assert load_mask(session.mask, tmp_path).sum() == 2 * 400


def test_magicbrush_and_emu_parquet(tmp_path, photos):
    import pyarrow as pa
    import pyarrow.parquet as pq

    def cell(image):
        return {"bytes": _png(image), "path": None}

    mask = Image.new("L", (128, 96), 0)
    mask.paste(255, (10, 10, 30, 30))
    rows = [{"img_id": "42", "turn_index": 2, "source_img": cell(photos["chelsea"]), "mask_img": cell(mask),
             "instruction": "give the cat a hat", "target_img": cell(photos["coffee"])},
            {"img_id": "42", "turn_index": 1, "source_img": cell(photos["astronaut"]), "mask_img": cell(mask),
             "instruction": "make the woman a robot", "target_img": cell(photos["chelsea"])}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "dev-00000.parquet")
    items = importers.magicbrush_parquet(tmp_path / "dev-00000.parquet", tmp_path, tmp_path / "images", "combined")
    (session,) = items
    assert [i.text for i in session.instructions] == ["make the woman a robot", "give the cat a hat"]
    with Image.open(tmp_path / session.image) as first:
        assert np.array_equal(np.asarray(first), np.asarray(photos["astronaut"]))
    assert load_mask(session.mask, tmp_path).sum() == 400

    emu = [{"instruction": "make the cat orange", "image": cell(photos["chelsea"]), "task": "local",
            "split": "test", "idx": 7, "hash": "h", "input_caption": "a cat", "output_caption": "an orange cat"},
           {"instruction": "", "image": cell(photos["coffee"]), "task": "global", "split": "test", "idx": 8,
            "hash": "h", "input_caption": "", "output_caption": ""}]
    pq.write_table(pa.Table.from_pylist(emu), tmp_path / "emu.parquet")
    (item,) = importers.emu_edit(tmp_path / "emu.parquet", tmp_path, tmp_path / "emu")
    assert item.id == "emu-7" and item.category == "local" and item.instructions[0].keyword == "cat"
    assert item.output_caption == "an orange cat" and item.mask is None and item.target is None
    with pytest.raises(ManifestError, match="no column"):
        importers.emu_edit(tmp_path / "dev-00000.parquet", tmp_path, tmp_path / "emu")


def test_eval_import_command_writes_a_manifest(tmp_path, photos, capsys):
    from foi_engine.cli import main

    root = tmp_path / "data"
    (root / "annotation_images" / "2_add_object_80").mkdir(parents=True)
    mapping = {"000000000222": {"image_path": "2_add_object_80/000000000222.jpg",
                                "original_prompt": "a dog on the grass", "editing_prompt": "a dog on the grass [with a ball]",
                                "editing_instruction": "Add a ball next to the dog", "editing_type_id": "2",
                                "blended_word": "", "mask": [1000, 50]}}
    (root / "mapping_file.json").write_text(json.dumps(mapping))
    assert main(["eval-import", "pie-bench", str(root), "-o", str(tmp_path / "pie.jsonl")]) == 0
    assert "1 edits (0 multi-instruction), 1 with guessed keywords" in capsys.readouterr().out
    (item,) = read_manifest(tmp_path / "pie.jsonl")
    assert item.instructions[0].keyword == "ball" and item.category == "2_add_object"
    assert main(["eval-import", "magicbrush", str(tmp_path / "nothing-here"), "-o", str(tmp_path / "m.jsonl")]) == 1
    assert "No parquet files" in capsys.readouterr().err
