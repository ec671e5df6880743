"""The training loop in docs/models.md runs as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def test_models_doc_example_runs():
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {})
    text = out.getvalue()
    loss = float(re.search(r"loss ([0-9.]+)", text).group(1))
    assert loss < 0.2
    assert "leaf 'fc1.weight'" in text and "linear" in text
