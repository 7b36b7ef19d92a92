"""The TUI package stays light: no model library is imported until a model is loaded."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("llama_cpp", "torch", "exllamav2", "ctranslate2", "faster_whisper")


def test_importing_the_app_imports_no_model_library():
    code = (
        "import sys, tui.app, agent.cli.tui_cmd\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
