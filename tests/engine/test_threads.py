"""The CPU thread policy: what it chooses, and that every entry point applies it before
torch is imported (OpenMP reads its variables only then)."""

import json
import os
import subprocess
import sys

import pytest

from foi_engine import SettingsError, threads


@pytest.fixture
def clean_environment(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)


def test_automatic_is_every_core_less_what_the_window_keeps(clean_environment, monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 8)
    assert threads.choose() == threads.ThreadPolicy(8, "PASSIVE", "automatic")
    assert threads.choose(leave_free=1).threads == 7
    monkeypatch.setattr(threads, "cores", lambda: 1)
    assert threads.choose(leave_free=1).threads == 1  # never zero


def test_the_users_choices_win(clean_environment, monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    assert threads.choose() == threads.ThreadPolicy(3, "ACTIVE", "environment")
    assert threads.choose(5) == threads.ThreadPolicy(5, "ACTIVE", "setting")  # --threads over the environment
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")  # unreadable: ignored, not fatal
    assert threads.choose().source == "automatic"


@pytest.mark.parametrize("bad", [-1, 257, 2.5, "4", True, None])
def test_out_of_range_counts_are_refused(bad):
    with pytest.raises(SettingsError, match="CPU threads"):
        threads.choose(bad)


def _fresh_python(code: str, env_extra=None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_cli_parses_without_importing_torch():
    seen = _fresh_python("import json, sys\nfrom foi_engine.cli import build_parser\nbuild_parser()\n"
                         "print(json.dumps({'torch': 'torch' in sys.modules}))")
    assert seen == {"torch": False}


def test_foi_applies_the_policy_before_torch_loads(tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 64), "grey").save(tmp_path / "in.png")
    code = (
        "import json, os, sys\nfrom foi_engine.cli import main\n"
        f"code = main(['edit', {str(tmp_path / 'in.png')!r}, '-i', 'make it red', '-o', {str(tmp_path / 'out.png')!r},"
        " '--model', 'tiny-random', '--steps', '2', '--resolution', '64', '--threads', '1'])\n"
        "import torch\n"
        "print(json.dumps({'code': code, 'threads': torch.get_num_threads(), 'wait': os.environ['OMP_WAIT_POLICY']}))"
    )
    assert _fresh_python(code) == {"code": 0, "threads": 1, "wait": "PASSIVE"}
    # A wait policy the user chose is kept.
    assert _fresh_python(code, {"OMP_WAIT_POLICY": "ACTIVE"})["wait"] == "ACTIVE"


def test_a_bad_thread_count_is_one_line(capsys):
    from foi_engine.cli import main

    assert main(["edit", "missing.png", "-i", "x", "-o", "out.png", "--threads", "999"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("foi: CPU threads must be") and err.count("\n") == 1


def test_small_work_runs_on_one_thread_unless_the_user_chose(clean_environment, monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "cores", lambda: 2)
    try:
        threads.apply(0)
        threads.fit_to_work(threads.SMALL_WORK / 10)
        assert torch.get_num_threads() == 1
        threads.fit_to_work(threads.SMALL_WORK * 10)
        assert torch.get_num_threads() == 2
        threads.apply(2)  # the user's count stands, whatever the work
        threads.fit_to_work(threads.SMALL_WORK / 10)
        assert torch.get_num_threads() == 2
    finally:
        monkeypatch.setattr(threads, "_in_force", None)
        torch.set_num_threads(before)
