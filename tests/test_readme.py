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


def test_the_five_minute_tour_runs_as_written_at_a_smaller_size(tmp_path, monkeypatch):
    """The tour of the whole path, each command as the README writes it; only the training lengths are cut."""
    import shlex

    from typer.testing import CliRunner

    from filmkit.clevr import dataset as clevr_dataset_module
    from filmkit.clevr.dataset import Preset, SplitPlan
    from filmkit.cli import app

    text = README.read_text()
    block = re.search(r"A five-minute tour.*?```bash\n(.*?)```", text, flags=re.DOTALL).group(1)
    commands = [line.split("#")[0].strip() for line in block.replace("\\\n", " ").splitlines()]
    # the tiny preset's 300 images take about 15 s to make; the same command on 12 keeps the suite quick
    small = Preset("tiny", "12/4/4 images", 64, 64, (SplitPlan("train", 12), SplitPlan("val", 4), SplitPlan("test", 4)))
    monkeypatch.setitem(clevr_dataset_module.PRESETS, "tiny", small)
    monkeypatch.chdir(tmp_path)
    shorter = {"max_steps=300": "max_steps=3", "--minutes 1": "--minutes 0.05"}
    names = []
    for command in filter(None, commands):
        for long, short in shorter.items():
            command = command.replace(long, short)
        words = shlex.split(command)
        assert words[0] == "filmkit", command
        names.append(words[1])
        result = CliRunner().invoke(app, words[1:])
        assert result.exit_code == 0, f"{command}\n{result.output}"
    assert names == ["generate", "stats", "train", "eval", "ask", "demo"]
    assert (tmp_path / "runs" / "tiny" / "best.pt").exists() and (tmp_path / "runs" / "demo" / "report.md").exists()
