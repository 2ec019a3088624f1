"""The playground, the status page and the API docs in a real headless Chromium (Debian's
``chromium``, driven by Playwright) against a real server with several models: iris (tabular),
digits (an image model), sentiment (text, Chinese included), and two of the fake runtime: an A/B
test with markup in its description, and a form with a field of choices.

Every control is found by its label, every request the pages make is recorded, and each test
ends by checking that none left the server's origin and that the browser logged no error (a
Content-Security-Policy violation is one). ``MODELPORT_SCREENSHOTS=docs`` writes the
screenshots there instead of a temp folder: the README shows ``playground.png`` and
``docs/playground.md`` shows ``status.png``.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Response,
    expect,
    sync_playwright,
)

from modelport.cli.examples import train_example
from modelport.cli.examples.digits import digits_data
from modelport.cli.pin import pin_repository
from modelport.model.pins import Pins
from tests.helpers import Server, running_server, write_fake_model

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own download is not reachable
KEY = "playground-key"
IRIS_VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
HOSTILE = 'An A/B test <b id="injected">bold</b><img src="/injected.png">'
CHINESE = "老闆人很好，還送我們一盤小菜。"  # noqa: RUF001 (a Chinese comma)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, digits_repo: Path) -> Path:
    path = tmp_path_factory.mktemp("playground") / "models"
    train_example("iris", path)
    train_example("sentiment", path)
    shutil.copytree(digits_repo / "digits", path / "digits", ignore=shutil.ignore_patterns(".*"))
    pin_repository(path, Pins.default(path), model="digits")  # the test's own files: trusted
    bounded = {"ge": 0, "le": 10}
    write_fake_model(
        path,
        "ab",
        versions=(1, 2),
        description=HOSTILE,
        parameters={"classes": ["no", "yes"]},
        signature={"inputs": [{"name": "x", **bounded}, {"name": "y", **bounded}]},
        traffic={"split": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]},
    )
    colour = {"name": "colour", "type": "str", "choices": ["red", "green", "blue"]}
    size = {"name": "size", "type": "int", "ge": 1, "le": 5, "description": "Size, 1 to 5"}
    write_fake_model(path, "colours", signature={"inputs": [colour, size]})
    return path


@pytest.fixture(scope="module")
def server(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("playground-server") / "server.log"
    with running_server([str(models), "--default-model", "iris"], log) as running:
        yield running


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield browser
    browser.close()


class Visit:
    """A fresh browser page that records every request it makes and every error it logs."""

    def __init__(self, browser: Browser, origin: str) -> None:
        self.origin = origin
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("response", self._response)

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.errors.append(f"{response.status} {response.url}")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def open(self, path: str) -> Page:
        self.page.goto(self.origin + path)
        return self.page

    def check_stayed_home(self, *, errors_allowed: tuple[str, ...] = ()) -> None:
        """No request left the origin (``data:``/``blob:`` never do) and nothing was logged."""
        wanted = urlsplit(self.origin)
        away = [
            url
            for url in self.requests
            if urlsplit(url).scheme not in ("data", "blob")
            and urlsplit(url)[:2] != (wanted.scheme, wanted.netloc)
        ]
        assert away == []
        assert self.requests  # the recording works
        unexpected = [e for e in self.errors if not any(a in e for a in errors_allowed)]
        assert unexpected == []


@pytest.fixture
def visit(browser: Browser, server: Server) -> Iterator[Visit]:
    visit = Visit(browser, server.url)
    yield visit
    visit.context.close()


def _screenshot(page: Page, name: str, tmp_path: Path, *, published: bool = True) -> Path:
    folder = Path(os.environ.get("MODELPORT_SCREENSHOTS") or tmp_path) if published else tmp_path
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def _digit_png() -> tuple[bytes, int]:
    """A held-out digit as an 8-bit grayscale PNG, and its true label."""
    _, test_x, _, test_y = digits_data()
    pixels = np.clip(test_x[0, 0] * 255, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue(), int(test_y[0])


def _fill_iris(page: Page, row: dict[str, float]) -> None:
    page.get_by_label("Model", exact=True).select_option("iris")
    for name, value in row.items():
        page.get_by_label(name, exact=True).fill(str(value))
    page.get_by_role("button", name="Predict").click()


def test_the_iris_form_predicts_the_class(visit: Visit, tmp_path: Path) -> None:
    page = visit.open("/")
    expect(page.get_by_label("petal_width", exact=True)).to_have_value("0.2")  # the card's example
    expect(page.get_by_label("petal_width", exact=True)).to_have_attribute("max", "10")
    _fill_iris(page, IRIS_VIRGINICA)
    expect(page.locator("#prediction")).to_have_text("virginica")
    expect(page.get_by_role("img", name="class probabilities")).to_be_visible()
    expect(page.locator('[data-fact="Version"]')).to_have_text("1")
    expect(page.locator('[data-fact="Variant"]')).to_have_text("v1")
    expect(page.locator('[data-fact="Request id"]')).to_have_text(re.compile(r"^[0-9a-f]{32}$"))
    expect(page.locator('[data-fact="Latency"]')).to_contain_text("ms")
    snippet = page.locator("#snippet")
    expect(snippet).to_contain_text(f"curl -X POST '{visit.origin}/models/iris/predict'")
    expect(snippet).to_contain_text('"petal_length":5.2')
    page.get_by_role("button", name="Python").click()
    expect(snippet).to_contain_text('json={"sepal_length": 6.7,')
    page.get_by_role("button", name="curl").click()
    _screenshot(page, "playground.png", tmp_path)
    visit.check_stayed_home()


def test_a_bound_is_checked_before_sending(visit: Visit) -> None:
    page = visit.open("/?model=iris")
    page.get_by_label("sepal_length", exact=True).fill("11")
    page.get_by_role("button", name="Predict").click()
    expect(page.get_by_role("alert")).to_have_text("sepal_length: must be > 0, ≤ 10")
    assert not any(url.endswith("/predict") for url in visit.requests)
    visit.check_stayed_home()


def test_a_digits_png_shows_the_top_k(visit: Visit, server: Server, tmp_path: Path) -> None:
    data, _ = _digit_png()
    image = tmp_path / "digit.png"
    image.write_bytes(data)
    wanted = httpx.post(
        f"{server.url}/models/digits/predict",
        json={"image": base64.b64encode(data).decode()},
        timeout=30,
    ).json()
    page = visit.open("/?model=digits")
    page.get_by_label("image", exact=True).set_input_files(str(image))
    expect(page.get_by_role("img", name="preview of the chosen image")).to_be_visible()
    page.get_by_label("Version", exact=True).select_option("1")  # the TorchScript version
    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#prediction")).to_have_text(wanted["prediction"])
    expect(page.get_by_role("heading", name="Top 3")).to_be_visible()
    top = page.get_by_role("img", name="top classes").locator("text.label")
    expect(top).to_have_text([entry["label"] for entry in wanted["top_k"]])
    expect(page.locator('[data-fact="Version"]')).to_have_text("1")
    visit.check_stayed_home()


def test_chinese_text_is_predicted(visit: Visit, server: Server) -> None:
    wanted = httpx.post(f"{server.url}/models/sentiment/predict", json={"text": CHINESE}).json()
    page = visit.open("/?model=sentiment")
    page.get_by_label("text", exact=True).fill(CHINESE)
    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#prediction")).to_have_text(wanted["prediction"])
    page.get_by_role("button", name="Python").click()
    expect(page.locator("#snippet")).to_contain_text(f'json={{"text": "{CHINESE}"}}')
    visit.check_stayed_home()


def test_feedback_is_counted_on_the_status_page(visit: Visit, tmp_path: Path) -> None:
    page = visit.open("/")
    _fill_iris(page, IRIS_VIRGINICA)
    expect(page.locator("#prediction")).to_have_text("virginica")
    page.get_by_label("True label", exact=True).select_option("versicolor")
    page.get_by_role("button", name="Send feedback").click()
    expect(page.get_by_role("status").filter(has_text="Feedback")).to_have_text(
        "Feedback recorded (new): the prediction was wrong."
    )
    page.get_by_role("link", name="Status of iris").click()
    expect(page.get_by_role("heading", name="iris", exact=True)).to_be_visible()
    expect(page.get_by_label("Feedback received")).to_have_text("1")
    expect(page.get_by_label("Predictions answered")).not_to_have_text("0")
    report = page.locator("section.report")
    expect(report.get_by_role("row").nth(1)).to_contain_text("v1")
    expect(report.get_by_role("cell").nth(5)).to_have_text("1")  # feedback of v1
    expect(report.get_by_role("cell").nth(6)).to_have_text("0.0 %")  # it was wrong
    expect(page.locator("#verdict")).to_have_text("only v1 has served: nothing to compare yet")
    expect(page.get_by_role("img", name="accuracy per variant")).to_be_visible()
    expect(page.get_by_label("Requests / s")).not_to_have_text("measuring…")  # a second reading
    _screenshot(page, "status-iris.png", tmp_path, published=False)
    visit.check_stayed_home()


def test_the_docs_render_their_operations_offline(visit: Visit) -> None:
    page = visit.open("/docs")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(
        page.locator('.opblock-summary-path[data-path="/models/digits/predict"]')
    ).to_be_visible()
    page.goto(visit.origin + "/redoc")
    expect(page.get_by_role("heading", name=re.compile(r"Predict: iris$"))).to_be_attached()
    # Swagger UI and ReDoc render descriptions as Markdown, sanitised: ab's <img> is asked for
    # (from this origin), its <b> is bold; no script runs (and the CSP allows none inline)
    visit.check_stayed_home(errors_allowed=("/injected.png", "404 (Not Found)"))


def test_the_key_field_appears_when_keys_are_set(
    browser: Browser, models: Path, tmp_path: Path
) -> None:
    iris_only = tmp_path / "models"
    shutil.copytree(models / "iris", iris_only / "iris", ignore=shutil.ignore_patterns(".*"))
    pin_repository(iris_only, Pins.default(iris_only))
    env = {"MODELPORT_INFERENCE_KEY": KEY, "MODELPORT_OUTCOMES": "false"}
    with running_server([str(iris_only)], tmp_path / "log", env=env) as keyed:
        visit = Visit(browser, keyed.url)
        try:
            page = visit.open("/?model=iris")
            page.get_by_role("button", name="Predict").click()
            expect(page.locator("section.answer [role=alert]")).to_contain_text("401")
            page.get_by_label("Inference key", exact=True).fill(KEY)
            page.get_by_label("Inference key", exact=True).dispatch_event("change")
            page.get_by_role("button", name="Predict").click()
            expect(page.locator("#prediction")).to_have_text("setosa")
            expect(page.locator("#snippet")).to_contain_text("$MODELPORT_INFERENCE_KEY")
            expect(page.locator("#snippet")).not_to_contain_text(KEY)
            admin = re.compile("rollout|rollback|unload|canary|traffic", re.IGNORECASE)
            expect(page.get_by_role("button", name=admin)).to_have_count(0)
            page.goto(f"{keyed.url}/status/iris")
            expect(page.get_by_label("Predictions answered")).to_have_text("1")
            expect(page.get_by_role("button")).to_have_count(0)  # no action at all
            visit.check_stayed_home(errors_allowed=("401",))  # the refused prediction
        finally:
            visit.context.close()


def test_choices_make_a_select_and_a_refusal_is_shown(visit: Visit) -> None:
    page = visit.open("/?model=colours")
    colour = page.get_by_label("colour", exact=True)
    expect(colour.locator("option")).to_have_text(["red", "green", "blue"])
    colour.select_option("green")
    size = page.get_by_label("size", exact=True)
    expect(size).to_have_attribute("min", "1")
    expect(page.get_by_text("Size, 1 to 5 · ≥ 1, ≤ 5")).to_be_visible()
    size.fill("3")
    page.get_by_role("button", name="Predict").click()  # the fake model takes no text: a 422
    expect(page.locator("section.answer [role=alert]")).to_have_text(
        "422: model 'colours' rejected the input: could not convert string to float: 'green'"
    )
    expect(page.locator("#snippet")).to_contain_text('{"colour":"green","size":3}')
    visit.check_stayed_home(errors_allowed=("422",))


def test_an_ab_test_is_charted_with_intervals(visit: Visit, server: Server, tmp_path: Path) -> None:
    """Sticky users split between v1 and v2; feedback says v1 is right 18 times in 30 and v2 28
    times in 30: the status page charts both accuracies with their intervals and the verdict."""
    right = {"v1": 0, "v2": 0}
    seen = {"v1": 0, "v2": 0}
    user = 0
    with httpx.Client(base_url=server.url, timeout=10) as client:
        while min(seen.values()) < 30:
            user += 1
            answer = client.post(
                "/models/ab/predict", json={"x": 1, "y": 2}, headers={"X-User-Id": str(user)}
            )
            variant = answer.headers["x-model-variant"]
            if seen[variant] == 30:
                continue
            seen[variant] += 1
            correct = right[variant] < {"v1": 18, "v2": 28}[variant]
            right[variant] += correct
            label = answer.json()["prediction"] if correct else "no"
            request_id = answer.headers["x-request-id"]
            sent = client.post("/feedback", json={"request_id": request_id, "label": label})
            assert sent.status_code == 200, sent.text
    page = visit.open("/status/ab")
    about = page.locator("section.about")
    expect(about).to_contain_text(HOSTILE)  # markup shown as text, never parsed
    expect(page.locator("#injected")).to_have_count(0)
    expect(page.get_by_role("img", name="traffic shares")).to_contain_text("50.0 %")
    chart = page.get_by_role("img", name="accuracy per variant")
    expect(chart.locator("text.value")).to_have_text(["60.0 %  n=30", "93.3 %  n=30"])
    expect(chart.locator("line.whisker")).to_have_count(6)
    # 60 % against 93.3 % on 30 feedback each: significant for one look (p=0.002), not yet for
    # the always-valid test the verdict follows
    expect(page.locator("#verdict")).to_have_text("no significant difference, always-valid p=0.106")
    expect(page.locator("section.report")).to_contain_text(
        "v2 vs v1: +33.3 % (95 % CI +13.7 % to +53.0 %): no significant difference"
    )
    expect(page.get_by_label("Requests / s")).not_to_have_text("measuring…")
    _screenshot(page, "status.png", tmp_path)
    assert not any("injected" in url for url in visit.requests)
    visit.check_stayed_home()
