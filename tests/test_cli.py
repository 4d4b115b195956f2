from typer.testing import CliRunner

from filmkit import __version__
from filmkit.cli import app

runner = CliRunner()


def test_every_command_the_docs_name_exists():
    """A `filmkit WORD` in README.md or docs/ that the command line lacks is a stale doc or a lost command."""
    import re
    from pathlib import Path

    import typer.main

    root = Path(__file__).resolve().parents[1]
    command = typer.main.get_command(app)
    known = {name: getattr(sub, "commands", {}) for name, sub in command.commands.items()}
    texts = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    named = set()
    for path in texts:
        text = path.read_text()
        # in prose (`filmkit train`) and at the start of a line in a fenced block of commands
        blocks = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL))
        pattern = r"filmkit ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?"
        found = re.findall("`" + pattern, text) + re.findall(r"^\s*" + pattern, blocks, flags=re.MULTILINE)
        for word, sub in found:
            named.add((path.name, word, sub))
    assert len({word for _, word, _ in named}) >= 12
    for where, word, sub in sorted(named):
        assert word in known, f"{where} names `filmkit {word}`, which is not a command"
        if known[word] and sub:
            assert sub in known[word], f"{where} names `filmkit {word} {sub}`, which is not a command"


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"filmkit {__version__}"


def test_models_prints_the_paper_parameter_counts():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "59,495,752" in result.output and "59,107,528" in result.output
