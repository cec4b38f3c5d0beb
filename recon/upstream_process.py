"""Running an upstream project's own code in its own interpreter, as a subprocess with files in between: its pins
conflict with ours, so nothing of it is imported here. The drivers it runs are in ``recon/upstream/``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from amodal3d.core.errors import UserError

DRIVERS = Path(__file__).resolve().parent / "upstream"
_CHECKED: set[tuple[str, str]] = set()


def interpreter(given: str | None, variable: str, code: Path) -> str:
    """The upstream's python: given, else $variable, else CODE/.venv/bin/python, else ours (checked next)."""
    local = code / ".venv" / "bin" / "python"
    return given or os.environ.get(variable) or (str(local) if local.is_file() else sys.executable)


def check_interpreter(python: str, code: Path, imports: str, project: str, flag: str) -> None:
    """``python`` runs in ``code`` and imports the upstream's requirements; else one clear line."""
    if (python, str(code)) in _CHECKED:
        return
    try:
        run = subprocess.run([python, "-c", f"import {imports}"], cwd=code, capture_output=True, check=False,
                             text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"{project}'s python '{python}' does not run ({exc})") from None
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["?"])[-1]
        raise UserError(f"{project}'s python '{python}' cannot import its requirements ({last}): make its "
                        f"environment with pip install -r {code}/requirements.txt and pass {flag}")
    _CHECKED.add((python, str(code)))


def run_driver(python: str, code: Path, driver: str, ours: list[str], theirs: list[str], what: str) -> None:
    """``python recon/upstream/<driver> OURS -- THEIRS`` in the checkout; a failure raises with its last line."""
    command = [python, str(DRIVERS / driver), *ours, "--", *theirs]
    run = subprocess.run(command, cwd=code, capture_output=True, check=False, text=True)
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{what} failed: {last}")
