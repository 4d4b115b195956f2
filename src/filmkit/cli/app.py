"""The root `filmkit` command; each subcommand module attaches itself to `app`."""

import typer

from filmkit import __version__

app = typer.Typer(
    name="filmkit",
    help="FiLM for visual reasoning: generate CLEVR-style data, read the CLEVR family, train and evaluate models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"filmkit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """FiLM for visual reasoning."""
