"""The API behind filmkit serve, through Starlette's test client, against the shipped model."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch

pytest.importorskip("starlette", reason="the [serve] extra (starlette, httpx) is not installed")
pytest.importorskip("httpx", reason="the [serve] extra (starlette, httpx) is not installed")

from PIL import Image  # noqa: E402
from serve_world import make_serve_dataset  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from filmkit.analysis.film_params import NEAR_ZERO  # noqa: E402
from filmkit.data.vocab import Vocab  # noqa: E402
from filmkit.serve import scenes as scene_module  # noqa: E402
from filmkit.serve.app import create_app  # noqa: E402
from filmkit.train.ask import ask, prepare_image  # noqa: E402
from filmkit.vqa import load_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    dataset = make_serve_dataset(tmp_path_factory.mktemp("serve"))
    checkpoint = load_checkpoint("pretrained")
    client = TestClient(create_app(checkpoint, dataset=dataset, name="pretrained"))
    return {"dataset": dataset, "checkpoint": checkpoint, "client": client}


def png_of(array: np.ndarray, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format)
    return buffer.getvalue()


def decoded(data_url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix) :]))))


def test_the_model_and_the_dataset_are_described(world):
    info = world["client"].get("/api/model").json()
    config = world["checkpoint"].model.config
    assert info["resolution"] == [64, 64] and info["blocks"] == config.num_blocks
    assert info["channels"] == config.module_dim and info["dataset"] == {"split": "val", "images": 2}
    scenes = world["client"].get("/api/scenes").json()
    assert scenes["total"] == 2 and [s["filename"] for s in scenes["scenes"]] == [
        "CLEVR_val_000000.png",
        "CLEVR_val_000001.png",
    ]


def test_a_dataset_image_comes_with_its_own_questions_and_answers(world):
    own = world["client"].get("/api/images/data-1/questions").json()["questions"]
    assert len(own) == 5 and all(q["answer"] and q["question"].endswith("?") for q in own)
    shown = np.asarray(Image.open(io.BytesIO(world["client"].get("/api/images/data-1").content)))
    expected = prepare_image(world["dataset"] / "images" / "val" / "CLEVR_val_000001.png", (64, 64))
    assert np.array_equal(shown, expected.transpose(1, 2, 0))


def test_ask_gives_the_models_answer_heatmap_and_film_parameters(world):
    client, checkpoint = world["client"], world["checkpoint"]
    question = client.get("/api/images/data-0/questions").json()["questions"][0]["question"]
    reply = client.post("/api/ask", json={"image": "data-0", "question": question}).json()

    image = world["dataset"] / "images" / "val" / "CLEVR_val_000000.png"
    direct = ask(checkpoint.model, checkpoint.vocab, image, question, top_k=5)
    assert reply["answer"] == direct.answer
    assert [a for a, _ in reply["top"]] == [a for a, _ in direct.top] and len(reply["top"]) == 5
    assert decoded(reply["heatmap"]).shape == (256, 256, 3)  # the 64x64 input enlarged 4x, heat blended on it

    ids, _ = Vocab.from_json(checkpoint.vocab).encode_question(question)
    with torch.no_grad():
        params = checkpoint.model.film_params(torch.tensor([ids]))[0]
    gammas = np.array(reply["gammas"])
    assert gammas.shape == (checkpoint.model.config.num_blocks, checkpoint.model.config.module_dim)
    assert np.allclose(gammas, params[:, 0].numpy(), atol=1e-4)
    assert np.allclose(reply["betas"], params[:, 1].numpy(), atol=1e-4)
    expected_off = [np.flatnonzero(np.abs(block) < NEAR_ZERO).tolist() for block in params[:, 0].numpy()]
    assert reply["switched_off"] == expected_off


def test_compare_names_the_channels_whose_gamma_differs_most(world):
    questions = ["How many cubes are there?", "What color is the large sphere?"]
    reply = world["client"].post("/api/compare", json={"image": "data-0", "questions": questions}).json()
    first, second = (np.array(r["gammas"]) for r in reply["results"])
    gap = np.abs(first - second)
    for block, row in enumerate(reply["differing_channels"]):
        channels = [entry["channel"] for entry in row]
        assert channels[0] == int(np.argmax(gap[block])) and len(channels) == 8
        assert [entry["gap"] for entry in row] == sorted((entry["gap"] for entry in row), reverse=True)
    assert reply["results"][0]["answer"] != "" and reply["results"][0]["gammas"] != reply["results"][1]["gammas"]


def test_a_fresh_scene_is_drawn_from_its_seed(world):
    client = world["client"]
    first = client.post("/api/generate", json={"seed": 3}).json()["id"]
    again = client.post("/api/generate", json={"seed": 3}).json()["id"]
    other = client.post("/api/generate", json={"seed": 4}).json()["id"]
    assert first == again == "seed-3"
    pictures = [client.get(f"/api/images/{i}").content for i in (first, other)]
    assert np.asarray(Image.open(io.BytesIO(pictures[0]))).shape == (64, 64, 3) and pictures[0] != pictures[1]
    assert client.post("/api/generate", json={"seed": -1}).status_code == 400
    assert "whole number" in client.post("/api/generate", json={"seed": "x"}).json()["error"]


def test_an_upload_is_resized_as_the_model_reads_it(world):
    picture = np.random.default_rng(0).integers(0, 255, (80, 120, 3), dtype=np.uint8)
    reply = world["client"].post("/api/upload", content=png_of(picture)).json()
    assert reply["original_size"] == [120, 80] and reply["resized_to"] == [64, 64]
    shown = np.asarray(Image.open(io.BytesIO(world["client"].get(f"/api/images/{reply['id']}").content)))
    assert np.array_equal(shown, prepare_image(picture, (64, 64)).transpose(1, 2, 0))
    jpeg = world["client"].post("/api/upload", content=png_of(picture, "JPEG"))
    assert jpeg.status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"certainly not an image", "not an image"),
        (png_of(np.zeros((4, 4, 3), np.uint8), "GIF"), "send a PNG or JPEG"),
        (png_of(np.zeros((4100, 4100, 3), np.uint8)), "pixels in all"),
    ],
)
def test_a_bad_upload_is_refused_with_a_message(world, body, message):
    reply = world["client"].post("/api/upload", content=body)
    assert reply.status_code == 400 and message in reply.json()["error"]


def test_an_upload_over_the_size_limit_is_refused_before_it_is_decoded(world):
    reply = world["client"].post("/api/upload", content=b"\0" * (scene_module.MAX_UPLOAD_BYTES + 1))
    assert reply.status_code == 400 and "the limit is 10 MB" in reply.json()["error"]


def test_questions_and_ids_are_checked(world):
    client = world["client"]
    empty = client.post("/api/ask", json={"image": "data-0", "question": "  ?"})
    assert empty.status_code == 400 and "empty" in empty.json()["error"]
    assert client.post("/api/ask", json={"question": "Is there a cube?"}).status_code == 400
    missing = client.post("/api/ask", json={"image": "data-9", "question": "Is there a cube?"})
    assert missing.status_code == 404 and "data-9" in missing.json()["error"]
    assert client.get("/api/images/upload-feedface/questions").status_code == 404
    assert client.post("/api/ask", content=b"not json").status_code == 400
    words = client.post("/api/words", json={"question": "Is there a flurble cube?"}).json()
    assert words["unknown_words"] == ["flurble"]
    assert client.get("/api/scenes?limit=0").status_code == 400


def test_the_page_names_what_it_shows(world):
    page = world["client"].get("/").text
    for element in ('id="question"', 'id="ask"', 'id="heatmap"', 'id="film"', 'id="compare"', 'id="upload"'):
        assert element in page


def test_the_command_refuses_a_missing_checkpoint_or_dataset_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from filmkit.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["serve", "--checkpoint", str(tmp_path / "none.pt")])
    assert missing.exit_code == 2 and "none.pt" in missing.output and "Traceback" not in missing.output
    empty = runner.invoke(app, ["serve", "--data", str(tmp_path)])
    assert empty.exit_code == 2 and "not a CLEVR-layout dataset" in empty.output
    wrong_split = runner.invoke(app, ["serve", "--data", str(make_serve_dataset(tmp_path / "d")), "--split", "dev"])
    assert wrong_split.exit_code == 2 and "no split 'dev' (it has: val)" in wrong_split.output


def test_a_folder_of_images_without_questions_is_shown_too(tmp_path):
    from filmkit.clevr.generate import SplitSpec, generate_split

    generate_split(SplitSpec(split="val", num_images=3, width=32, height=32), tmp_path, workers=1)
    client = TestClient(create_app(load_checkpoint("pretrained"), dataset=tmp_path))
    assert client.get("/api/scenes").json()["total"] == 3
    assert client.get("/api/images/data-2/questions").json() == {"questions": []}
    shown = np.asarray(Image.open(io.BytesIO(client.get("/api/images/data-2").content)))
    assert shown.shape == (64, 64, 3)  # a 32x32 image resized to what the model reads
