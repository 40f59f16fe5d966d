"""The layering of docs/ARCHITECTURE.md ("Layers"), enforced with import-linter's contracts in pyproject.toml."""

import shutil
import subprocess
import sys
from pathlib import Path


def test_import_contracts_hold():
    root = Path(__file__).resolve().parent.parent
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert command, "import-linter is not installed: pip install -e '.[test]'"
    done = subprocess.run([command, "--config", str(root / "pyproject.toml")], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout
