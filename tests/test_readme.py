"""The README's Python snippets run as written, without warnings."""

import re
import warnings
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_snippets():
    """The README shows usage in Python code blocks."""
    assert len(BLOCKS) >= 3


def test_readme_snippets_run_in_order_without_warnings(capsys):
    """Each block runs after the ones before it, as a reader would paste them."""
    namespace = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for block in BLOCKS:
            exec(compile(block, str(README), "exec"), namespace)
    assert [str(w.message) for w in caught] == []
    score = float(capsys.readouterr().out.split()[0])
    assert score > 0.95
