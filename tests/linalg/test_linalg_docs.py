"""The worked example of docs/linalg.md runs and prints what the page shows; README links the page."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "linalg.md"


def test_gaussian_process_example_prints_what_the_page_shows():
    text = DOC.read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    shown = re.search(r"prints\n\n```text\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {})
    assert out.getvalue() == shown


def test_readme_links_the_page():
    assert "(docs/linalg.md)" in (ROOT / "README.md").read_text()
