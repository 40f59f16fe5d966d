"""`foi eval-import shapes` + `foi eval --model shapes`: the first real run of the evaluation,
on the shapes model's held-out scenes with their exact regions."""

import json

import numpy as np
import pytest
from PIL import Image

from foi_engine.cli import main
from foi_engine.shapes.evaluate import heldout_scenes


def test_import_writes_the_cards_scenes_with_exact_regions(tmp_path, capsys):
    manifest = tmp_path / "shapes.jsonl"
    assert main(["eval-import", "shapes", "-o", str(manifest)]) == 0
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(entries) == 70 and sum(len(e["instructions"]) > 1 for e in entries) == 30
    scenes = list(heldout_scenes(40, 30))
    for entry, (group, example, seed) in zip(entries, scenes):
        assert entry["category"] == group and entry["seed"] == seed
        assert [i["text"] for i in entry["instructions"]] == [e.text for e in example.edits]
        assert np.array_equal(np.asarray(Image.open(tmp_path / entry["image"])), example.source)
        region = np.asarray(Image.open(tmp_path / entry["mask"])) > 0
        assert np.array_equal(region, np.any([e.mask for e in example.edits], axis=0))


def test_eval_runs_the_shapes_model_at_its_own_settings(tmp_path, capsys):
    manifest = tmp_path / "shapes.jsonl"
    main(["eval-import", "shapes", "-o", str(manifest)])
    code = main(["eval", str(manifest), "--model", "shapes", "--metrics", "none", "--limit", "2",
                 "--out", str(tmp_path / "out"), "--no-progress", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["settings"]["resolution"] == 64 and run["settings"]["grounding_factor"] == 1
    assert "PSNR outside" in capsys.readouterr().out


def test_shapes_needs_no_source_and_the_others_do(tmp_path, capsys):
    assert main(["eval-import", "shapes", str(tmp_path), "-o", str(tmp_path / "m.jsonl")]) == 1
    assert main(["eval-import", "pie-bench", "-o", str(tmp_path / "m.jsonl")]) == 1
    assert "needs no source folder" in capsys.readouterr().err


def test_a_fresh_slice_starts_where_asked_and_keeps_the_groups_apart():
    from foi_engine.shapes.data import make_example
    from foi_engine.shapes.evaluate import FRESH_FIRST

    scenes = list(heldout_scenes(2, 2, FRESH_FIRST))
    assert [(group, seed) for group, _, seed in scenes] == [("single", 0), ("single", 1), ("multi", 0), ("multi", 1)]
    assert np.array_equal(scenes[1][1].source, make_example(FRESH_FIRST + 1, "heldout", instructions=1).source)
    assert np.array_equal(scenes[3][1].source, make_example(100_000 + FRESH_FIRST + 1, "heldout", instructions=3).source)
    assert not np.array_equal(scenes[0][1].source, next(heldout_scenes(1, 0))[1].source)


def test_the_evaluation_refuses_a_negative_scene_index(capsys):
    from foi_engine.shapes.evaluate import main as evaluate

    with pytest.raises(SystemExit):
        evaluate(["--first", "-1"])
    assert "scene index" in capsys.readouterr().err
