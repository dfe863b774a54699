"""The README's library example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_library_example_scores_the_demo(demo, tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1
    monkeypatch.setenv("ALIGNSLM_CACHE", str(demo.root.parent.parent))  # the demo this session built
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], str(README), "exec"), {})
    accuracy, path = capsys.readouterr().out.strip().splitlines()[-1].rsplit(" ", 1)
    assert "'n': 18" in accuracy and (tmp_path / path).is_file()
