"""Build FoI Studio's one-folder bundle with PyInstaller and test it.

    pip install pyinstaller
    python3 packaging/build.py            # → packaging/dist/FoI Studio/

Runs the finished bundle's `--self-check` headless (Qt's offscreen platform, no network), and
prints the bundle's size and the build time. Exit status 0 only if the build and the check pass.
Work and output folders (packaging/build, packaging/dist) are git-ignored."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = HERE / "foi-studio.spec"
WORK = HERE / "build"
DIST = HERE / "dist"
BUNDLE = DIST / "FoI Studio"
CHECK_TIMEOUT_S = 900


def executable() -> Path:
    return BUNDLE / ("foi-studio.exe" if sys.platform == "win32" else "foi-studio")


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def build() -> float:
    try:
        import PyInstaller  # noqa: F401 - only to give a clear message when it is missing
    except ImportError:
        sys.exit("PyInstaller is not installed: run `pip install pyinstaller` first.")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                    "--workpath", str(WORK), "--distpath", str(DIST), str(SPEC)], check=True)
    return time.perf_counter() - start


def self_check() -> int:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
    try:
        return subprocess.run([str(executable()), "--self-check"], env=env, timeout=CHECK_TIMEOUT_S).returncode
    except subprocess.TimeoutExpired:
        print(f"The bundle's self-check did not finish in {CHECK_TIMEOUT_S} s.")
        return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check-only", action="store_true", help="only run the self-check of the existing bundle")
    args = parser.parse_args()
    seconds = None
    if not args.check_only:
        shutil.rmtree(BUNDLE, ignore_errors=True)
        seconds = build()
    if not executable().is_file():
        print(f"No bundle at {BUNDLE}: build it first.")
        return 1
    size = folder_size(BUNDLE)
    print(f"Bundle: {BUNDLE} — {size / 2**20:.0f} MiB in {sum(1 for _ in BUNDLE.rglob('*'))} files"
          + (f", built in {seconds / 60:.1f} min" if seconds is not None else ""), flush=True)
    status = self_check()
    print("Self-check of the bundle " + ("passed." if status == 0 else f"FAILED (exit status {status})."))
    return status


if __name__ == "__main__":
    sys.exit(main())
