"""`foi` as a person uses it: results written, masks written, clear one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from foi_engine.cli import main

FAST = ["--model", "tiny-random", "--steps", "4", "--resolution", "64", "--device", "cpu"]


@pytest.fixture
def photo_file(tmp_path, photo):
    path = tmp_path / "cat.jpg"
    photo.save(path, quality=92)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_edit_writes_result_and_masks(capsys, tmp_path, photo_file):
    before = photo_file.read_bytes()
    out = tmp_path / "result.png"
    code, stdout, err = run(capsys, "edit", photo_file, "-i", "make the cat a tiger", "-k", "cat",
                            "-i", "turn the grass green", "-k", "grass", "-a", "2", "-t", "0.5",
                            "-o", out, "--masks-dir", tmp_path / "masks", *FAST)
    assert code == 0, err
    assert "random weights" in stdout
    assert Image.open(out).size == (64, 64)
    names = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert names == ["1-make-the-cat-a-tiger-heatmap.png", "1-make-the-cat-a-tiger-mask.png",
                     "2-turn-the-grass-green-heatmap.png", "2-turn-the-grass-green-mask.png"]
    assert photo_file.read_bytes() == before


def test_mask_and_heat_map_names_are_cut_between_words(tmp_path):
    from foi_engine.cli import mask_paths
    from foi_engine.settings import Instruction

    paths = mask_paths(tmp_path, [Instruction("make the sky above the old harbour a glowing sunset")])
    assert [p.name for p in paths] == ["1-make-the-sky-above-the-old-harbour-a-mask.png",
                                       "1-make-the-sky-above-the-old-harbour-a-heatmap.png"]


def test_locate_then_edit_with_masks_matches_single_pass(capsys, tmp_path, photo_file):
    instructions = ["-i", "make the cat a tiger", "-k", "cat"]
    code, _, err = run(capsys, "locate", photo_file, *instructions, "--masks-dir", tmp_path / "m", "--seed", "3", *FAST)
    assert code == 0, err
    mask = tmp_path / "m" / "1-make-the-cat-a-tiger-mask.png"
    run(capsys, "edit", photo_file, *instructions, "--masks", mask, "-o", tmp_path / "two.png", "--seed", "3", *FAST)
    run(capsys, "edit", photo_file, *instructions, "-o", tmp_path / "one.png", "--seed", "3", *FAST)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "two.png")), np.asarray(Image.open(tmp_path / "one.png")))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-i", "   "], "instruction is empty"),
        (["-i", "make the cat a tiger", "-k", "dog"], 'not a word of "make the cat a tiger": choose one of'),
        (["-i", "make it winter", "--steps", "0"], "Steps must be a whole number from 1 to 1000"),
        (["-i", "make it winter", "--strength", "1.5"], "at most 1"),
        (["-i", "make it winter", "--strength", "nan"], "finite"),
        (["-i", " ".join(["xylophone"] * 16)], "too long"),
        (["-i", "make it winter", "-t", "2"], "Threshold must lie between 0 and 1"),
    ],
)
def test_bad_requests_give_one_line(capsys, tmp_path, photo_file, argv, message):
    code, _, err = run(capsys, "edit", photo_file, *FAST, *argv, "-o", tmp_path / "r.png")  # argv wins
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("foi:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in err


def test_no_instruction_is_a_usage_error(capsys, tmp_path, photo_file):
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "edit", photo_file, "-o", tmp_path / "r.png", *FAST)
    assert exit_info.value.code == 2
    assert "give at least one instruction" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [(b"not an image", "not an image file"), (None, "no such file")])
def test_bad_photos(capsys, tmp_path, content, message):
    path = tmp_path / "photo.png"
    if content is not None:
        path.write_bytes(content)
    code, _, err = run(capsys, "edit", path, "-i", "make it winter", "-o", tmp_path / "r.png", *FAST)
    assert code == 1 and message in err and "Traceback" not in err


def test_small_photo_and_wrong_mask(capsys, tmp_path, photo_file):
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 40)).save(small)
    code, _, err = run(capsys, "edit", small, "-i", "make it winter", "-o", tmp_path / "r.png", *FAST)
    assert code == 1 and "at least 64" in err
    square = tmp_path / "square.png"
    Image.new("L", (50, 20)).save(square)
    code, _, err = run(capsys, "edit", photo_file, "-i", "make it winter", "--masks", square,
                       "-o", tmp_path / "r.png", *FAST)
    assert code == 1 and "does not match the photo's shape" in err


def test_output_checked_before_any_work(capsys, tmp_path, photo_file):
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "edit", photo_file, "-i", "make it winter", "-o", tmp_path / "r.gif", *FAST)
    assert exit_info.value.code == 2 and "end the name with" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(capsys, "edit", photo_file, "-i", "make it winter", "-o", photo_file, *FAST)
    assert "replace the photo itself" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(capsys, "edit", photo_file, "-i", "make it winter", "-o", tmp_path / "no" / "r.png", *FAST)
    assert "does not exist" in capsys.readouterr().err


def test_keyword_before_instruction_is_a_usage_error(capsys, tmp_path, photo_file):
    with pytest.raises(SystemExit):
        run(capsys, "edit", photo_file, "-k", "cat", "-i", "make the cat a tiger", "-o", tmp_path / "r.png")
    assert "must follow the -i" in capsys.readouterr().err


def test_console_script_runs_offline(tmp_path, photo_file):
    out = tmp_path / "r.png"
    done = subprocess.run([sys.executable, "-m", "foi_engine.cli", "edit", str(photo_file), "-i", "make it winter",
                           "-o", str(out), *FAST], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.exists()


def test_mistakes_are_answered_without_loading_torch(tmp_path, photo_file):
    # Importing torch, diffusers and transformers is most of a run's start-up (docs/INSTALL.md):
    # help and every mistake that can be found without the model are answered before it.
    mistakes = [
        ["--help"],
        ["edit", "--help"],
        ["edit", str(photo_file), "-o", str(tmp_path / "r.png")],
        ["edit", str(photo_file), "-i", "make it winter", "-o", str(tmp_path / "r.gif")],
        ["edit", str(photo_file), "-i", "make it winter", "--steps", "0", "-o", str(tmp_path / "r.png")],
        ["edit", str(photo_file), "-i", "make the cat a tiger", "-k", "dog", "-o", str(tmp_path / "r.png")],
        ["edit", str(tmp_path / "missing.png"), "-i", "make it winter", "-o", str(tmp_path / "r.png")],
    ]
    code = ("import json, sys\nfrom foi_engine.cli import main\ncodes = []\n"
            f"for argv in {mistakes!r}:\n"
            "    try:\n        codes.append(main(argv))\n    except SystemExit as exit:\n        codes.append(exit.code)\n"
            "print(json.dumps({'codes': codes, 'torch': 'torch' in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"codes": [0, 0, 2, 2, 1, 1, 1], "torch": False}


def test_the_command_exits_with_the_errors_code(tmp_path):
    # `foi` ends without the interpreter's teardown (foi_engine.process): the code must survive it.
    done = subprocess.run([sys.executable, "-m", "foi_engine.cli", "edit", str(tmp_path / "missing.png"), "-i",
                           "make it winter", "-o", str(tmp_path / "r.png")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and done.stderr.startswith("foi: ") and len(done.stderr.splitlines()) == 1


def test_layered_and_full_resolution_outputs(capsys, tmp_path, photo_file):
    import zipfile

    instructions = ["-i", "make the cat a tiger", "-k", "cat", "-i", "turn the grass green", "-k", "grass"]
    code, _, err = run(capsys, "edit", photo_file, *instructions, "-o", tmp_path / "r.ora", *FAST)
    assert code == 0, err
    with zipfile.ZipFile(tmp_path / "r.ora") as archive:
        assert archive.namelist()[0] == "mimetype"
        stack = archive.read("stack.xml").decode()
    assert 'name="make the cat a tiger"' in stack and 'name="turn the grass green"' in stack
    code, _, err = run(capsys, "edit", photo_file, *instructions, "-o", tmp_path / "r.psd", *FAST)
    assert code == 0, err
    code, _, err = run(capsys, "edit", photo_file, "-i", "make it winter", "--no-focus", "--full-resolution",
                       "-o", tmp_path / "full.jpg", *FAST)
    assert code == 0, err
    assert Image.open(tmp_path / "full.jpg").size == Image.open(photo_file).size


def test_the_full_resolution_photo_keeps_the_photos_exif(capsys, tmp_path, photo):
    exif = Image.Exif()
    exif[315] = "A. Photographer"  # Artist
    photo.save(tmp_path / "cat.jpg", quality=92, exif=exif.tobytes())
    code, _, err = run(capsys, "edit", tmp_path / "cat.jpg", "-i", "make it winter", "--no-focus",
                       "--full-resolution", "-o", tmp_path / "full.jpg", *FAST)
    assert code == 0, err
    assert Image.open(tmp_path / "full.jpg").getexif()[315] == "A. Photographer"


def test_grounding_factor_picks_the_layer_masks_are_read_from(capsys, tmp_path, photo_file):
    """The tiny model has cross-attention at latent/1 and latent/2 (64 px → 8×8 and 4×4 cells)."""
    sizes = {}
    for factor in (1, 2):
        masks = tmp_path / f"f{factor}"
        code, _, err = run(capsys, "locate", photo_file, "-i", "make the cat a tiger", "-k", "cat",
                           "--grounding-factor", factor, "--masks-dir", masks, *FAST)
        assert code == 0, err
        heatmap = np.asarray(Image.open(next(masks.glob("*-heatmap.png"))).convert("L"))
        # The heat-map is the grounding map upsampled: count its distinct cells along a row.
        sizes[factor] = len({tuple(row) for row in heatmap.T}) if heatmap.std() else 1
    assert sizes[1] > sizes[2]


def test_the_shapes_model_runs_at_its_own_size_unless_told_otherwise(capsys, tmp_path, photo_file):
    for extra, size in (([], (64, 64)), (["--resolution", "128"], (128, 128))):
        out = tmp_path / f"shapes-{size[0]}.png"
        code, _, err = run(capsys, "edit", photo_file, "-i", "make the circle red", "-k", "circle",
                           "--model", "shapes", "--steps", "3", "--device", "cpu", "-o", out, *extra)
        assert code == 0, err
        assert Image.open(out).size == size


def test_no_output_lands_on_an_input_or_another_output(capsys, tmp_path, photo_file):
    """Mask names are planned before the run: one that is the photo, a given mask or the
    result is refused, and nothing is written or changed."""
    masks = tmp_path / "masks"
    masks.mkdir()
    photo_as_mask = masks / "1-make-the-cat-a-tiger-mask.png"
    photo_as_mask.write_bytes(photo_file.read_bytes())
    before = photo_as_mask.read_bytes()
    cases = [
        ("locate", photo_as_mask, ["--masks-dir", masks], "replace the photo itself"),
        ("edit", photo_file, ["-o", masks / "1-make-the-cat-a-tiger-heatmap.png", "--masks-dir", masks],
         "write"),
        ("edit", photo_file, ["-o", tmp_path / "r.png", "--masks", photo_as_mask, "--masks-dir", masks],
         "replace the mask"),
    ]
    for command, photo, extra, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            run(capsys, command, photo, "-i", "make the cat a tiger", "-k", "cat", *extra, *FAST)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and err.count("\n") == 1, err
    assert photo_as_mask.read_bytes() == before
    assert sorted(p.name for p in masks.iterdir()) == [photo_as_mask.name]
    assert not (tmp_path / "r.png").exists()


def test_a_masks_folder_that_is_a_file_is_refused_before_the_run(capsys, tmp_path, photo_file):
    not_a_folder = tmp_path / "masks"
    not_a_folder.write_bytes(b"mine")
    with pytest.raises(SystemExit):
        run(capsys, "edit", photo_file, "-i", "make it winter", "-o", tmp_path / "r.png", "--masks-dir", not_a_folder,
            *FAST)
    assert "is a file, not a folder" in capsys.readouterr().err
    assert not_a_folder.read_bytes() == b"mine" and not (tmp_path / "r.png").exists()


def test_edit_and_eval_read_the_run_settings_with_one_definition():
    from foi_engine.cli import build_parser
    from foi_engine.evaluation.cli import EVAL_SETTINGS
    from foi_engine.setting_options import given

    settings = ["--steps", "3", "--strength", "0.5", "--image-guidance", "2", "--text-guidance", "6",
                "--resolution", "256"]
    edit = build_parser().parse_args(["edit", "photo.jpg", "-o", "out.png", *settings, "--gamma", "2"])
    evaluation = build_parser().parse_args(["eval", "m.jsonl", "--out", "results", *settings])
    assert given(edit) == {"steps": 3, "strength": 0.5, "image_guidance": 2.0, "text_guidance": 6.0,
                           "resolution": 256, "gamma": 2}
    assert given(evaluation, EVAL_SETTINGS) == {name: given(edit)[name] for name in EVAL_SETTINGS}
    left_out = build_parser().parse_args(["edit", "photo.jpg", "-o", "out.png"])
    assert given(left_out) == {}  # the model's own settings, else the paper's
