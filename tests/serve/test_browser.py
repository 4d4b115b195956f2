"""filmkit serve in a real browser: Debian's chromium, headless, against a server this test starts on 127.0.0.1.

The Makefile's test set-up installs chromium and chromium-driver where apt-get can; elsewhere this skips and says so.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the [serve] extra is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the [serve] extra is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the [dev] extra) is not installed")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from serve_world import make_serve_dataset  # noqa: E402

from filmkit.serve.app import create_app  # noqa: E402
from filmkit.vqa import load_checkpoint  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver; "
    "make test installs them as root)",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    dataset = make_serve_dataset(tmp_path_factory.mktemp("page"))
    app = create_app(load_checkpoint("pretrained"), dataset=dataset, name="pretrained")
    port = free_port()
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def test_a_question_typed_on_the_page_gets_an_answer_and_a_heatmap(server, browser, tmp_path):
    browser.get(server)
    wait = WebDriverWait(browser, 30)
    wait.until(lambda page: len(page.find_elements(By.CSS_SELECTOR, "#thumbs img")) == 2)
    wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#own-questions li"))
    box = browser.find_element(By.ID, "question")
    box.send_keys("Is there a flurble cube?")
    wait.until(lambda page: "flurble" in page.find_element(By.ID, "unknown").text)
    box.clear()
    box.send_keys("How many cubes are there?")
    browser.find_element(By.ID, "ask").click()
    wait.until(lambda page: page.find_element(By.ID, "answer").text)
    heatmap = browser.find_element(By.ID, "heatmap").get_attribute("src")
    assert heatmap.startswith("data:image/png;base64,")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#film svg")) == 4  # one plot per FiLMed block
    assert browser.find_element(By.ID, "error").text == ""

    browser.find_element(By.ID, "question-b").send_keys("What color is the large sphere?")
    browser.find_element(By.ID, "compare").click()
    wait.until(lambda page: len(page.find_elements(By.CSS_SELECTOR, "#pair figure")) == 2)
    assert "block" in browser.find_element(By.ID, "differing").text

    shot = Path(os.environ.get("FILMKIT_SCREENSHOT_DIR", tmp_path)) / "serve.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_an_empty_question_shows_a_message_not_an_answer(server, browser):
    browser.get(server)
    wait = WebDriverWait(browser, 30)
    wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#thumbs img"))
    browser.find_element(By.ID, "ask").click()
    wait.until(lambda page: page.find_element(By.ID, "error").text)
    assert "empty" in browser.find_element(By.ID, "error").text
