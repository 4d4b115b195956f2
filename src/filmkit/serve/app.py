"""The web app behind `filmkit serve`: one static page and a small JSON API over a FiLM checkpoint.

Routes (all answers are JSON except the page and the images; an error is ``{"error": "..."}`` with status 400
or 404, never a traceback):

- ``GET /``: the page (page.html beside this file).
- ``GET /api/model``: the model's name, input size, blocks, channels, answers, and the dataset's split and size.
- ``GET /api/scenes?offset=0&limit=24``: ids and file names of the dataset's images.
- ``GET /api/images/{id}``: an image as the model sees it (PNG).
- ``GET /api/images/{id}/questions``: a dataset image's own questions with their true answers.
- ``POST /api/generate`` ``{"seed": 7}``: draw and render a fresh scene; returns its id.
- ``POST /api/upload`` (the PNG or JPEG file as the body): returns its id and original size.
- ``POST /api/words`` ``{"question": ...}``: the words the model does not know.
- ``POST /api/ask`` ``{"image": id, "question": ...}``: answer, top-5, heatmap (a PNG data URL), FiLM parameters.
- ``POST /api/compare`` ``{"image": id, "questions": [a, b]}``: both answers and, per block, the channels whose
  gamma differs most between the two questions.

Example::

    app = create_app(load_checkpoint("pretrained"), dataset="data/clevr-cpu")
    # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from filmkit.analysis.film_params import NEAR_ZERO
from filmkit.analysis.heatmap import blend_heatmap
from filmkit.data.vocab import Vocab, tokenize
from filmkit.serve.scenes import MAX_UPLOAD_BYTES, SceneError, SceneStore, UnknownImageError, png_bytes
from filmkit.train.ask import ask
from filmkit.vqa.checkpoint import Checkpoint

PAGE = Path(__file__).with_name("page.html")
SHOWN_SIZE = 256  # pixels per side of the heatmap image the page shows (the input is enlarged, pixels kept)
TOP_ANSWERS = 5
DIFFERING_CHANNELS = 8
MAX_QUESTION_CHARACTERS = 500


class RequestError(ValueError):
    """A request the API refuses; its message is shown on the page as it is."""


def create_app(
    checkpoint: Checkpoint, *, dataset: str | Path | None = None, split: str | None = None, name: str = "model"
) -> Starlette:
    """The Starlette app for ``checkpoint`` (a FiLM model on pixels with its vocabulary), showing ``dataset``'s
    ``split`` (default: val, else test, else train) when given."""
    model = checkpoint.model.eval()
    config = model.config
    if not hasattr(model, "film_params"):
        raise ValueError(f"{name}: filmkit serve shows FiLM models; this is the {config.architecture} baseline")
    if config.input_kind != "pixels":
        raise ValueError(f"{name}: filmkit serve needs a model that reads pixels, not ResNet features")
    if not checkpoint.vocab:
        raise ValueError(f"{name}: the checkpoint holds no vocabulary to read questions with")
    vocab = Vocab.from_json(checkpoint.vocab)
    store = SceneStore((config.image_width, config.image_height), dataset, split)
    blend_heatmap(np.zeros((2, 2, 3), np.uint8), np.zeros((1, 1)))  # imports matplotlib now, not on the first ask
    page_html = PAGE.read_text(encoding="utf-8")

    def answer(scene_id: str, question: str) -> dict:
        image = store.image(scene_id)
        started = time.perf_counter()
        result = ask(model, vocab, image, question, top_k=TOP_ANSWERS)
        seconds = time.perf_counter() - started
        gammas, betas = result.film_params[:, 0], result.film_params[:, 1]
        return {
            "answer": result.answer,
            "top": [[token, round(probability, 4)] for token, probability in result.top],
            "unknown_words": result.unknown_words,
            "heatmap": _data_url(blend_heatmap(_enlarged(image), result.heatmap)),
            "gammas": np.round(gammas, 4).tolist(),
            "betas": np.round(betas, 4).tolist(),
            "switched_off": [np.flatnonzero(np.abs(block) < NEAR_ZERO).tolist() for block in gammas],
            "model_ms": round(seconds * 1000, 1),
        }

    async def page(request: Request) -> Response:
        return HTMLResponse(page_html)

    async def model_info(request: Request) -> Response:
        return JSONResponse(
            {
                "name": name,
                "resolution": [config.image_width, config.image_height],
                "blocks": config.num_blocks,
                "channels": config.module_dim,
                "answers": vocab.answer_tokens[4:],
                "near_zero": NEAR_ZERO,
                "dataset": {"split": store.split, "images": len(store.dataset_ids())} if store.split else None,
            }
        )

    async def scenes(request: Request) -> Response:
        offset = _int_parameter(request, "offset", 0, 0)
        limit = _int_parameter(request, "limit", 24, 1, 200)
        ids = store.dataset_ids()
        chosen = ids[offset : offset + limit]
        return JSONResponse(
            {"total": len(ids), "scenes": [{"id": i, "filename": store.dataset_filename(i)} for i in chosen]}
        )

    async def image(request: Request) -> Response:
        return Response(png_bytes(store.image(request.path_params["scene_id"])), media_type="image/png")

    async def image_questions(request: Request) -> Response:
        return JSONResponse({"questions": store.questions(request.path_params["scene_id"])})

    async def generate(request: Request) -> Response:
        seed = (await _json_body(request)).get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise RequestError(f"seed must be a whole number, got {seed!r}")
        return JSONResponse({"id": store.generate(seed)})

    async def upload(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
            raise SceneError(
                f"the upload is {int(declared) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB"
            )
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_UPLOAD_BYTES:
                raise SceneError(f"the upload is over the limit of {MAX_UPLOAD_BYTES / 1e6:.0f} MB")
        scene_id, original = store.upload(bytes(data))
        return JSONResponse(
            {"id": scene_id, "original_size": list(original), "resized_to": [config.image_width, config.image_height]}
        )

    async def words(request: Request) -> Response:
        question = _question(await _json_body(request), "question", allow_empty=True)
        known = vocab.question_token_to_idx
        tokens = tokenize(question, add_start=False, add_end=False)
        return JSONResponse({"unknown_words": [token for token in tokens if token not in known]})

    async def ask_route(request: Request) -> Response:
        body = await _json_body(request)
        return JSONResponse(answer(_image_id(body), _question(body, "question")))

    async def compare(request: Request) -> Response:
        body = await _json_body(request)
        questions = body.get("questions")
        if not isinstance(questions, list) or len(questions) != 2:
            raise RequestError("questions must be a list of two questions")
        scene_id = _image_id(body)
        results = [answer(scene_id, _question({"question": q}, "question")) for q in questions]
        gap = np.abs(np.array(results[0]["gammas"]) - np.array(results[1]["gammas"]))
        differing = [
            [{"channel": int(c), "gap": round(float(block[c]), 4)} for c in np.argsort(-block)[:DIFFERING_CHANNELS]]
            for block in gap
        ]
        return JSONResponse({"results": results, "differing_channels": differing})

    routes = [
        Route("/", page),
        Route("/api/model", model_info),
        Route("/api/scenes", scenes),
        Route("/api/images/{scene_id}", image),
        Route("/api/images/{scene_id}/questions", image_questions),
        Route("/api/generate", generate, methods=["POST"]),
        Route("/api/upload", upload, methods=["POST"]),
        Route("/api/words", words, methods=["POST"]),
        Route("/api/ask", ask_route, methods=["POST"]),
        Route("/api/compare", compare, methods=["POST"]),
    ]
    handlers = {
        RequestError: _error_response(400),
        SceneError: _error_response(400),
        UnknownImageError: _error_response(404),
    }
    return Starlette(routes=routes, exception_handlers=handlers)


def _error_response(status: int):
    async def handler(request: Request, error: Exception) -> Response:
        return JSONResponse({"error": str(error)}, status_code=status)

    return handler


async def _json_body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise RequestError("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    return body


def _question(body: dict, key: str, allow_empty: bool = False) -> str:
    question = body.get(key, "")
    if not isinstance(question, str):
        raise RequestError(f"{key} must be text, got {question!r}")
    if len(question) > MAX_QUESTION_CHARACTERS:
        raise RequestError(f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARACTERS}")
    if not allow_empty and not any(character.isalnum() for character in question):
        raise RequestError("the question is empty: type a question about the image")
    return question


def _image_id(body: dict) -> str:
    scene_id = body.get("image")
    if not isinstance(scene_id, str) or not scene_id:
        raise RequestError("choose an image first (image must be an id from /api/scenes, /api/generate or /api/upload)")
    return scene_id


def _int_parameter(request: Request, key: str, default: int, low: int, high: int | None = None) -> int:
    text = request.query_params.get(key)
    if text is None:
        return default
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise RequestError(f"{key} must be a whole number {bounds}, got {text!r}")
    return int(text)


def _enlarged(image: np.ndarray) -> np.ndarray:
    """The image scaled up (nearest neighbour) to about SHOWN_SIZE pixels on its longer side."""
    factor = max(1, SHOWN_SIZE // max(image.shape[:2]))
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def _data_url(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")
