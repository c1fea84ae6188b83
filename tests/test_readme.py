"""The README's Python examples run as written (in a scratch directory)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    spaces: list[dict] = []
    for block in blocks:  # each on its own, as a reader copies it
        spaces.append({})
        exec(compile(block, str(README), "exec"), spaces[-1])  # noqa: S102
    assert spaces[0]["out"].probs.shape == (128, 64)
    assert 0.0 <= spaces[1]["metrics"]["kmeans_acc"] <= 1.0
    assert (tmp_path / "runs" / "readme-example" / "model.pt").exists()
