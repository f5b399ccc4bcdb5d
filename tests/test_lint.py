"""The lint gate: pyflakes-class mistakes (undefined names, unused imports, syntax) anywhere in the repo."""

import shutil
import subprocess
import sys
from pathlib import Path


def test_ruff_finds_nothing(repo_root: Path):
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", "--output-format", "concise", "."], cwd=repo_root,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
