"""`filmkit serve`: a local web page over a FiLM checkpoint (needs the ``serve`` extra: Starlette and uvicorn).

`filmkit.serve.app` holds the routes, `filmkit.serve.scenes` the images the page can show, ``page.html`` the page.

Example::

    from filmkit.serve.app import create_app
    from filmkit.vqa import load_checkpoint

    app = create_app(load_checkpoint("pretrained"), dataset="data/clevr-cpu")
"""
