"""`filmkit serve`: a local page where a person asks a FiLM model about a scene and sees what FiLM does."""

from pathlib import Path

import typer

from filmkit.cli.app import app
from filmkit.cli.common import fail


@app.command()
def serve(
    checkpoint: str = typer.Option(
        "pretrained", "--checkpoint", help="A FiLM checkpoint (.pt), or pretrained (the shipped model)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="A dataset folder in the CLEVR layout whose images (and their questions) the page offers."
    ),
    split: str | None = typer.Option(None, "--split", help="The dataset's split to show (default: val, else test)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (127.0.0.1: this machine only)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
) -> None:
    """Serve a page to pick or draw a scene, ask questions, and see the answer, the heatmap and FiLM's gammas."""
    try:
        import uvicorn

        from filmkit.serve.app import create_app
    except ImportError as missing:
        fail(f"filmkit serve needs the [serve] extra ({missing.name} is missing): pip install -e '.[serve]'")
    import torch

    from filmkit.vqa import load_checkpoint

    torch.set_num_threads(min(torch.get_num_threads(), 2))  # one image per request: more threads only wait
    try:
        application = create_app(load_checkpoint(checkpoint), dataset=data, split=split, name=checkpoint)
    except (ValueError, OSError) as error:  # SceneError is a ValueError
        fail(str(error))
    typer.echo(f"filmkit serve: open http://{host}:{port}/ (Ctrl-C stops it)")
    uvicorn.run(application, host=host, port=port, log_level="warning")
