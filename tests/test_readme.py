"""The README's Python example must keep running as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "README.md has no python example"
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["logits"].shape == (1, 32)
    assert namespace["features"].shape == (1, 16, 7, 7)


def test_the_readme_first_look_runs_as_written(tmp_path, monkeypatch):
    """The tour that opens the README's command-line section: fresh scenes, the shipped model, its answer."""
    import shlex

    from typer.testing import CliRunner

    from filmkit.cli import app

    text = README.read_text()
    block = re.search(r"A first look.*?```bash\n(.*?)```", text, flags=re.DOTALL).group(1)
    commands = [line.split("#")[0].strip() for line in block.replace("\\\n", " ").splitlines()]
    monkeypatch.chdir(tmp_path)
    for command in filter(None, commands):
        words = shlex.split(command)
        assert words[0] == "filmkit", command
        result = CliRunner().invoke(app, words[1:])
        assert result.exit_code == 0, f"{command}\n{result.output}"
    assert (tmp_path / "where.png").stat().st_size > 0
