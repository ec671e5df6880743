"""docs/testing.md: its code blocks run, in one namespace, and the message it shows is the one printed."""

import contextlib
import io
import pathlib
import re

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def test_the_code_blocks_of_the_testing_page_run_and_show_what_they_print():
    text = DOC.read_text()
    namespace = {"__name__": "testing_doc"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in re.findall(r"```python\n(.*?)```", text, re.S):
            exec(compile(block, str(DOC), "exec"), namespace)
    shown = re.findall(r"print\(error\)\n```\n\n```\n(.*?)```", text, re.S)
    assert shown and out.getvalue().strip() == shown[0].strip()


def test_the_readme_links_the_page_where_it_promises_property_tests():
    readme = (DOC.parents[1] / "README.md").read_text()
    first = readme.split("\n## ", 1)[0]
    assert "docs/testing.md" in first
