"""The README's two set-up commands, as CI reads them."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command_with_data_required():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "GEODIFF_REQUIRE_DATA=1" in ci
    awk = ci[ci.index("awk"):ci.index("README.md)")] + "README.md"
    command = subprocess.run(["bash", "-c", awk], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert command.startswith("python3 -m venv .venv") and "pytest" in command
    assert command in readme
    assert readme.count("python3 -m venv .venv") == 2  # exactly two set-up commands
    assert ".venv/bin/geodiff demo" in readme
