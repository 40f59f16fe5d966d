"""`foi eval` end to end with the tiny engine and tiny metric models: the outputs, resuming,
sharding, failures and the run's consistency checks."""

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from foi_engine.cli import main
from foi_engine.evaluation import runner
from foi_engine.evaluation.manifest import ManifestError, read_manifest
from foi_engine.evaluation.report import collect

FAST = ["--model", "tiny-random", "--steps", "2", "--strength", "1.0", "--resolution", "64", "--no-progress"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """Three edits of scikit-image's photos: one with a ground-truth region, one with two
    instructions (multi-instruction), one whole-image."""
    from skimage import data

    root = tmp_path_factory.mktemp("bench")
    for name in ("chelsea", "coffee", "astronaut"):
        Image.fromarray(getattr(data, name)()).convert("RGB").resize((128, 96), Image.Resampling.LANCZOS).save(
            root / f"{name}.png")
    region = np.zeros((96, 128), dtype=np.uint8)
    region[10:60, 30:90] = 255
    Image.fromarray(region).save(root / "chelsea-region.png")
    entries = [
        {"id": "cat", "image": "chelsea.png", "instructions": [{"text": "put a hat on the cat", "keyword": "cat"}],
         "input_caption": "a cat", "output_caption": "a cat wearing a hat", "mask": "chelsea-region.png"},
        {"id": "coffee", "image": "coffee.png",
         "instructions": [{"text": "make the cup red", "keyword": "cup"},
                          {"text": "turn the table into wood", "keyword": "table"}],
         "input_caption": "a cup of coffee on a table", "output_caption": "a red cup on a wooden table"},
        {"id": "astronaut", "image": "astronaut.png", "instructions": ["make it a painting"],
         "input_caption": "a photo of a woman", "output_caption": "a painting of a woman"},
    ]
    path = root / "bench.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def _metric_args(folders):
    return [f"--{key.replace('_', '-')}={value}" for key, value in folders.items()]


@pytest.fixture(scope="module")
def full_run(manifest, metric_folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    assert main(["eval", str(manifest), "--out", str(out), *FAST, *_metric_args(metric_folders)]) == 0
    return out


def test_end_to_end_writes_table_csv_plot_and_contact_sheet(full_run, manifest):
    table = (full_run / "table.md").read_text()
    assert "Random-weight model" in table and "3 of 3 items have results" in table
    lines = table.splitlines()
    assert any(l.startswith("| Single-Instruction | FoI |") for l in lines)
    assert any(l.startswith("| Multi-Instruction | FoI |") for l in lines)
    assert sum(l.startswith("|  | IP2P |") for l in lines) == 4  # both groups, both tables
    header = next(l for l in lines if "CLIP-I" in l)
    assert [c.strip() for c in header.split("|")[2:7]] == ["Method", "CLIP-I", "Dino-I", "CLIP-D", "PickScore"]

    with open(full_run / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(r["item"], r["method"]) for r in rows] == [
        ("cat", "foi"), ("cat", "ip2p"), ("coffee", "foi"), ("coffee", "ip2p"), ("astronaut", "foi"),
        ("astronaut", "ip2p")]
    for row in rows:
        assert -1 <= float(row["clip_i"]) <= 1 and -1 <= float(row["clip_d"]) <= 1 and row["dino_i"]
        assert row["random_weights"] == "True" and not row["error"]
    for item in ("cat", "coffee", "astronaut"):  # PickScore preferences of one item sum to 1
        assert sum(float(r["pick_preference"]) for r in rows if r["item"] == item) == pytest.approx(1.0)
    cat_foi, cat_ip2p = rows[0], rows[1]
    assert 0 <= float(cat_foi["mask_iou"]) <= 1 and cat_ip2p["mask_iou"] == ""  # only FoI has masks
    assert float(cat_ip2p["psnr_outside"]) > 0 and rows[2]["psnr_outside"] == ""  # no truth for coffee
    assert rows[2]["multi"] == "True" and rows[2]["keywords"] == "cup | table"
    assert rows[4]["keywords"] == "(whole image)"

    assert sorted(p.name for p in (full_run / "images" / "coffee").iterdir()) == [
        "foi-mask0.png", "foi-mask1.png", "foi.png", "input.png", "ip2p.png"]
    with Image.open(full_run / "clip_plot.png") as plot, Image.open(full_run / "contact_sheet.png") as sheet:
        assert plot.size == (900, 640) and len(plot.getcolors(1 << 16)) > 10
        assert sheet.width > 5 * 100 and sheet.height > 3 * 100  # 5 columns, 3 rows of tiles


def test_resume_skips_finished_edits(full_run, manifest, metric_folders, tmp_path, monkeypatch, capsys):
    from foi_engine.engine import FoiEngine

    out = tmp_path / "resumed"
    shutil.copytree(full_run, out)
    calls = []
    original = FoiEngine.edit
    monkeypatch.setattr(FoiEngine, "edit", lambda self, *a, **k: calls.append(a[1]) or original(self, *a, **k))
    args = ["eval", str(manifest), "--out", str(out), *FAST, *_metric_args(metric_folders)]
    assert main(args) == 0
    assert calls == [] and "0 edits made, 6 already done, 0 failed" in capsys.readouterr().out
    (out / "records" / "coffee" / "ip2p.json").unlink()
    assert main(args) == 0
    assert len(calls) == 1 and [i.text for i in calls[0]] == ["make the cup red", "turn the table into wood"]
    assert "1 edits made, 5 already done" in capsys.readouterr().out


def test_two_shards_together_equal_one_run(full_run, manifest, metric_folders, tmp_path):
    out = tmp_path / "sharded"
    for shard in ("0/2", "1/2"):  # the first two items: one single-, one multi-instruction
        assert main(["eval", str(manifest), "--out", str(out), "--shard", shard, "--limit", "2", *FAST,
                     *_metric_args(metric_folders)]) == 0
    items = read_manifest(manifest)[:2]
    methods = runner.check_run_file(out, runner.EditSettings(steps=2, strength=1.0, resolution=64), 0, [])
    whole, parts = collect(full_run, items, methods), collect(out, items, methods)
    assert len(whole) == len(parts) == 4
    for a, b in zip(whole, parts):
        for key, value in a.items():
            if key != "seconds":
                assert b[key] == value, key
    for item in ("cat", "coffee"):
        for name in ("foi.png", "ip2p.png"):
            with Image.open(full_run / "images" / item / name) as x, Image.open(out / "images" / item / name) as y:
                assert np.array_equal(np.asarray(x), np.asarray(y))
    assert "2 of 2 items have results" in (out / "table.md").read_text()


def test_a_bad_item_is_recorded_once_and_the_rest_runs(manifest, tmp_path, capsys):
    broken = tmp_path / "broken.jsonl"
    lines = manifest.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["image"] = str(manifest.parent / "missing.png")
    broken.write_text(lines[0].replace('"chelsea.png"', json.dumps(str(manifest.parent / "chelsea.png")))
                      .replace('"chelsea-region.png"', json.dumps(str(manifest.parent / "chelsea-region.png")))
                      + "\n" + json.dumps(entry) + "\n")
    out = tmp_path / "out"
    assert main(["eval", str(broken), "--out", str(out), "--method", "ip2p", "--metrics", "none", *FAST]) == 0
    captured = capsys.readouterr()
    assert "missing.png: no such file" in captured.out and "1 edits made, 0 already done, 1 failed" in captured.out
    assert "| 1 | 1 |" in (out / "table.md").read_text()


def test_settings_must_match_the_folder_and_methods_parse(full_run, manifest, capsys):
    assert main(["eval", str(manifest), "--out", str(full_run), *FAST[:-1], "--steps", "3", "--metrics", "none"]) == 1
    assert "other settings" in capsys.readouterr().err
    assert runner.parse_method("magicbrush=ip2p:osunlp/MagicBrush", "m") == runner.Method(
        "magicbrush", "osunlp/MagicBrush", False)
    assert runner.parse_method("foi", "m") == runner.Method("foi", "m", True)
    with pytest.raises(ManifestError, match="is not a method"):
        runner.parse_method("dalle", "m")
    with pytest.raises(ManifestError, match="i/n"):
        runner.parse_shard("2")


def test_launcher_processes_come_from_the_launchers_variables(monkeypatch):
    assert runner.launched_processes()[:2] == (0, 1)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    assert runner.launched_processes()[:2] == (2, 3)
