"""The hostile tester's classes (docs/RELIABILITY.md): each ends in one clear message (CLI:
one `foi:` line, a non-zero exit, no traceback), nothing the user owns is changed, no stray
files, nothing hangs."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from foi_engine import BusyError, EditSettings, FoiEngine, Instruction, InstructionError, ModelError, SettingsError
from foi_engine.atomic import atomic_write
from foi_engine.cli import main
from foi_engine.photo import mask_levels
from foi_engine.tiny import tiny_random_pipeline

FAST = ["--model", "tiny-random", "--steps", "2", "--resolution", "64", "--device", "cpu"]


@pytest.fixture
def photo_file(tmp_path, photo):
    path = tmp_path / "cat.png"
    photo.save(path)
    return path


def one_line_failure(capsys, argv, code=1):
    """Run `foi`; assert one `foi:` line and the exit code; return the line."""
    try:
        returned = main([str(a) for a in argv])
    except SystemExit as stop:
        returned = stop.code
    err = capsys.readouterr().err
    assert returned == code, err
    assert err.startswith("foi: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def untouched(folder, before):
    assert sorted(p.name for p in folder.iterdir()) == before


# --- Text ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("make the cat \udcff red", "not valid text"),  # a \xff byte on the command line
    ("make the cat\x01 red", "control character U+0001"),
    ("x" * 1001, "at most 1000"),
])
def test_text_that_cannot_be_an_instruction_is_refused(capsys, tmp_path, photo_file, text, message):
    before = sorted(p.name for p in tmp_path.iterdir())
    err = one_line_failure(capsys, ["edit", photo_file, "-i", text, "-o", tmp_path / "r.ora", *FAST])
    assert message in err
    untouched(tmp_path, before)


def test_line_breaks_and_tabs_become_spaces():
    assert Instruction("make the cat\r\na\ttiger", "cat").text == "make the cat a tiger"


# --- Numbers: one range for the CLI and the editor, checked before any model loads --------

@pytest.mark.parametrize("option, message", [
    (["-a", "1e308"], "between 0 and 10"), (["-a", "-50"], "between 0 and 10"),
    (["--resolution", "30000"], "from 64 to 2048"), (["--steps", "1000000000"], "from 1 to 1000"),
    (["--text-guidance", "1e30"], "between 0 and 50"), (["--image-guidance=-1e30"], "between 0 and 20"),
    (["--gamma", "99"], "from 0 to 20"), (["--grounding-factor", "128"], "from 1 to 64"),
])
def test_numbers_out_of_range_are_refused_before_the_model_loads(capsys, tmp_path, photo_file, option, message):
    # A model that does not exist: had the check come after loading, the error would name the model.
    err = one_line_failure(capsys, ["edit", photo_file, "-i", "make the cat a tiger", "-k", "cat", *option,
                                    "-o", tmp_path / "r.png", "--model", str(tmp_path / "no-model")])
    assert message in err


def test_a_model_that_computes_nan_is_reported_not_saved_as_black(photo):
    pipe = tiny_random_pipeline(0)
    with torch.no_grad():
        next(pipe.unet.parameters()).fill_(float("nan"))
    with pytest.raises(ModelError, match="invalid numbers"):
        FoiEngine(pipe).edit(photo, [Instruction("make it winter")], EditSettings(steps=2, resolution=64))


# --- argparse ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["edit", "x.png", "-i", "a", "-o", "y.png", "--steps", "many"], ["bogus"],
                                  ["eval-import", "nope", "-o", "m.jsonl"]])
def test_a_bad_option_is_one_line_not_the_usage_block(capsys, argv):
    err = one_line_failure(capsys, argv, code=2)
    assert "--help" in err and "usage:" not in err


# --- Files that are not files --------------------------------------------------------------

def _cli(args, timeout=120):
    return subprocess.run([sys.executable, "-m", "foi_engine.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_fifos_devices_and_folders_are_refused_before_reading(tmp_path, photo_file):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    zero_link = tmp_path / "zero.png"
    zero_link.symlink_to("/dev/zero")
    out = tmp_path / "r.png"
    cases = [
        (["edit", fifo, "-i", "a", "-o", out, *FAST], "not a regular file"),
        (["edit", "/dev/zero", "-i", "a", "-o", out, *FAST], "not a regular file"),
        (["edit", tmp_path, "-i", "a", "-o", out, *FAST], "is a folder"),
        (["edit", photo_file, "-i", "a", "--masks", zero_link, "-o", out, *FAST], "not a regular file"),
        (["eval", fifo, "--out", tmp_path / "ev", "--model", "tiny-random"], "not a regular file"),
    ]
    for args, message in cases:
        started = time.monotonic()
        done = _cli(args)  # a read of the FIFO would block until the timeout
        assert done.returncode == 1 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert time.monotonic() - started < 60
    assert not out.exists()


def test_a_fifo_is_not_opened_as_a_project(tmp_path):
    from foi_desktop.document import ProjectError, open_project

    fifo = tmp_path / "work.foi"
    os.mkfifo(fifo)
    with pytest.raises(ProjectError, match="not a regular file"):
        open_project(fifo)


# --- Masks ---------------------------------------------------------------------------------

def test_sixteen_bit_masks_are_scaled_not_clipped():
    half = Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16))
    assert np.asarray(mask_levels(half)).mean() == pytest.approx(128, abs=1)


# --- Threads -------------------------------------------------------------------------------

def test_counting_tokens_during_edits_never_breaks_them(photo):
    engine = FoiEngine(tiny_random_pipeline(0))
    instructions = [Instruction("make the cat a tiger", "cat"), Instruction("turn the grass green", "grass")]
    errors, stop = [], threading.Event()

    def count():
        while not stop.is_set():
            try:
                assert engine.count_tokens(instructions) > 2
            except Exception as error:  # noqa: BLE001 - collected and asserted below
                errors.append(error)

    counters = [threading.Thread(target=count) for _ in range(2)]
    for thread in counters:
        thread.start()
    try:
        for seed in range(4):
            engine.edit(photo, instructions, EditSettings(steps=4, resolution=64), seed=seed)
    finally:
        stop.set()
        for thread in counters:
            thread.join()
    assert errors == []


def test_an_edit_started_from_a_progress_callback_is_refused(photo):
    engine = FoiEngine(tiny_random_pipeline(0))
    settings = EditSettings(steps=2, resolution=64)
    seen = []

    def on_step(i, total, preview):
        with pytest.raises(BusyError, match="inside another run"):
            engine.edit(photo, [Instruction("make it winter")], settings)
        seen.append(i)

    engine.edit(photo, [Instruction("make it winter")], settings, on_step=on_step)
    assert seen


# --- Signals and permissions ---------------------------------------------------------------

def test_sigterm_stops_like_ctrl_c_and_leaves_no_part_files(tmp_path, photo_file):
    out = tmp_path / "out.ora"
    process = subprocess.Popen([sys.executable, "-m", "foi_engine.cli", "edit", str(photo_file), "-i", "make it winter",
                                "-o", str(out), "--model", "tiny-random", "--steps", "1000", "--resolution", "64"],
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while "Editing" not in (line := process.stderr.readline()) and time.monotonic() < deadline:
        assert line, "the edit never started"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "stopped" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.png"]


def test_abandoned_part_files_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "out.ora"
    abandoned = tmp_path / ".out.ora.dead1234.part"
    abandoned.write_bytes(b"x" * 100)
    live = tmp_path / ".out.ora.live5678.part"
    live.write_bytes(b"y")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom foi_engine.locks import FileLock\n"
                               "lock = FileLock(sys.argv[1]); print('held', flush=True); time.sleep(60)", str(live)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with atomic_write(target) as stream:
            stream.write(b"result")
        assert not abandoned.exists() and live.exists() and target.read_bytes() == b"result"
    finally:
        holder.kill()
        holder.wait()


def test_overwriting_keeps_the_files_permissions(tmp_path):
    private = tmp_path / "private.png"
    private.write_bytes(b"old")
    private.chmod(0o600)
    with atomic_write(private) as stream:
        stream.write(b"new")
    assert private.stat().st_mode & 0o777 == 0o600 and private.read_bytes() == b"new"


def test_settings_refuse_what_the_ranges_exclude():
    with pytest.raises(SettingsError, match="between 0 and 50"):
        EditSettings(text_guidance=51)
    with pytest.raises(InstructionError, match="between 0 and 10"):
        Instruction("make it red", strength=10.5)


# --- Model folders and datasets --------------------------------------------------------------

def test_a_model_folder_missing_a_part_says_which(tmp_path):
    import shutil

    from foi_engine.catalog import BUNDLED_MODELS
    from foi_engine.catalog import check_folder

    folder = tmp_path / "model"
    shutil.copytree(BUNDLED_MODELS["shapes"], folder)
    shutil.rmtree(folder / "tokenizer")
    with pytest.raises(ModelError, match="lacks its tokenizer folder"):
        check_folder(folder, "my-model")
    shutil.copytree(BUNDLED_MODELS["shapes"] / "tokenizer", folder / "tokenizer")
    config = folder / "unet" / "config.json"
    config.write_text(config.read_text().replace('"in_channels": 8', '"in_channels": "8"'))
    with pytest.raises(ModelError, match="in_channels is '8'"):
        check_folder(folder, "my-model")


@pytest.mark.parametrize("hostile", ["../../escaped", "/etc/escaped", "..", "a/../../b"])
def test_dataset_ids_never_name_a_path_outside_the_images_folder(tmp_path, hostile):
    from foi_engine.evaluation.importers import _safe_name
    from foi_engine.evaluation.manifest import ManifestError

    images = tmp_path / "images"
    try:
        name = _safe_name(hostile, "id")
    except ManifestError as error:  # nothing left of it to name a file: refused with a message
        assert "cannot name a file" in str(error)
        return
    assert (images / f"{name}.png").resolve().parent == images.resolve()


def test_extreme_shapes_are_refused_with_the_size_said(capsys, tmp_path):
    strip = tmp_path / "strip.png"
    Image.new("RGB", (64, 30000), "grey").save(strip)
    err = one_line_failure(capsys, ["edit", strip, "-i", "make it red", "-o", tmp_path / "r.png", *FAST])
    assert "64×30000" in err and "at most 8:1" in err
    assert not (tmp_path / "r.png").exists()


def test_malformed_manifest_entries_fail_alone_and_a_damaged_run_file_is_reported(tmp_path, capsys, photo):
    import json

    photo.save(tmp_path / "cat.png")
    good = {"id": "ok", "image": "cat.png", "instructions": [{"text": "make it winter"}]}
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join([json.dumps(good), "{not json", json.dumps({"id": "x", "image": "cat.png"}),
                                   json.dumps({**good, "id": "bad", "instructions": [7]})]) + "\n")
    out = tmp_path / "out"
    args = ["eval", str(manifest), "--out", str(out), "--model", "tiny-random", "--metrics", "none", "--steps", "2",
            "--resolution", "64", "--no-progress", "--device", "cpu"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "m.jsonl line 2" in captured.err and "m.jsonl line 3" in captured.err and "line 4" in captured.err
    assert "2 edits made" in captured.out and "3 failed" in captured.out  # one item, FoI and plain
    # A damaged record is redone; a damaged run.json is reported and kept.
    record = next((out / "records").rglob("*.json"))
    record.write_text("[1, 2]")
    assert main(args) == 0
    assert "1 edits made, 1 already done" in capsys.readouterr().out
    (out / "run.json").write_text("{truncated")
    err = one_line_failure(capsys, args)
    assert "run.json is damaged" in err and (out / "run.json").read_text() == "{truncated"
