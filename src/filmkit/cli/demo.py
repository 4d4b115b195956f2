"""`filmkit demo`: the default end-to-end run."""

import typer

from filmkit.cli.app import app


@app.command()
def demo() -> None:
    """Generate a small dataset, train the cpu preset, evaluate and write a report (not built yet)."""
    typer.echo(
        "filmkit demo: the end-to-end demo (generate, train, evaluate, report) arrives with the training "
        "commands. Today filmkit offers the FiLM layer, the paper's model and its presets: see "
        "`filmkit models` and the README's Python example."
    )
