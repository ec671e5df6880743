"""Every Python block of README.md runs, and the quick start's printed path is the one it computes."""

import contextlib
import io
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(block):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(README), "exec"), {})


def test_quick_start_output_shown_in_readme_is_current():
    namespace = {}
    exec(compile(BLOCKS[0].replace("print(p)", ""), str(README), "exec"), namespace)
    shown = README.read_text().split("print(p)\n```\n\n```\n", 1)[1].split("```", 1)[0]
    assert str(namespace["p"]).strip() == shown.strip()
