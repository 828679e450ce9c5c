"""The web page (GET /) in a real browser: Debian's chromium, driven by playwright, over a real
uvicorn server (in a thread) holding a tiny image GAN, a tiny 2-D flow and a tiny GPT."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from serve_runs import run

from genlab.serve.fastapi_app import page_html
from genlab.serve.schemas import SEED_MAX
from genlab.serve.service import Service

CHROMIUM = Path("/usr/bin/chromium")
NO_BROWSER = f"no browser: {CHROMIUM} is missing (apt-get install chromium)"
CI = os.environ.get("CI") == "true"  # CI must run these tests (.ci/run installs chromium)
if not CHROMIUM.exists() and not CI:
    pytest.skip(NO_BROWSER, allow_module_level=True)

TIMEOUT_MS = 30_000  # generous: the machine may be busy with other tests


@contextmanager
def serving(service: Service) -> Iterator[str]:
    """`service` behind uvicorn on a free local port, in a thread; yields the page's URL."""
    import uvicorn

    from genlab.serve.fastapi_app import create_app

    sock = socket.socket()  # bound here, so no other process can take the port in between
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(service), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        service.close()
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    names = ("dcgan", "realnvp", "gpt")
    with serving(Service([f"{name}={run(name)}" for name in names])) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():  # only with CI=true: fail each test, not the whole collection
        pytest.fail(f"CI must have a browser; {NO_BROWSER}", pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (its own sessionStorage); fails the test on any JavaScript error."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-state=ready]")


def pick(page: Page, name: str) -> None:
    """Choose the model called `name` in the <select> (its options read 'NAME @ VERSION (KIND)')."""
    value = page.eval_on_selector(
        "#model",
        "(s, name) => [...s.options].find(o => o.text.startsWith(name + ' @')).value",
        name,
    )
    page.select_option("#model", value)


def generate(page: Page) -> None:
    page.click("#generate")
    page.wait_for_selector("body[data-state=done], body[data-state=error]")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-state", "done")


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("L"), dtype=np.float64)


def test_page_is_self_contained(server: str, page: Page):
    """Works offline: the page asks only its own server for anything (no CDN, no fonts)."""
    elsewhere: list[str] = []

    def only_the_server(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    open_page(page, server)
    assert page.title() == "genlab"
    assert elsewhere == []
    assert not re.search(r"(src|href)=\"(https?:)?//", page_html())


def test_image_model(server: str, page: Page):
    open_page(page, server)
    options = page.eval_on_selector_all("#model option", "os => os.map(o => o.text)")
    assert [o.split(" @ ")[0] for o in options] == ["dcgan", "realnvp", "gpt"]
    assert "(image)" in options[0] and "(text)" in options[2]
    expect(page.locator("#key-section")).to_be_hidden()  # this server wants no key
    pick(page, "dcgan")
    expect(page.locator("#model-description")).to_have_text(re.compile(r"^DCGAN \(Radford"))
    for shown in ("#n", "#seed"):
        expect(page.locator(shown)).to_be_visible()
    for hidden in ("#label", "#temperature", "#truncation", "#prompt", "#top-k"):
        expect(page.locator(hidden)).to_be_hidden()  # dcgan takes no conditions
    page.fill("#n", "6")
    page.fill("#seed", "7")
    generate(page)
    page.wait_for_function(
        """n => { const images = [...document.querySelectorAll('#images img')];
                  return images.length === n && images.every(i => i.complete && i.naturalWidth > 0); }""",
        arg=6,
    )
    sizes = page.eval_on_selector_all(
        "#images img", "images => images.map(i => [i.naturalWidth, i.naturalHeight, i.width])"
    )
    assert sizes == [[8, 8, 128]] * 6  # 8x8 digits drawn 16 times larger
    latency = page.text_content("#latency")
    assert re.fullmatch(r"server [\d.]+ ms · round trip [\d.]+ ms · seed 7 · batch of 6", latency)
    # the page sent n and the seed: the same images as a direct request
    direct = post(f"{server}v1/models/dcgan/generate", {"n": 6, "seed": 7})
    sources = page.eval_on_selector_all("#images img", "images => images.map(i => i.src)")
    assert sources == [f"data:image/png;base64,{png}" for png in direct["images"]]

    shot = pixels(page.screenshot(full_page=True))
    assert shot.std() > 5, "the page's screenshot is blank"
    grid = pixels(page.locator("#images").screenshot())
    assert grid.std() > 5 and len(np.unique(grid)) > 10, "the images did not render"


def test_samples_model(server: str, page: Page):
    open_page(page, server)
    pick(page, "realnvp")
    expect(page.locator("#temperature")).to_be_visible()  # a flow takes a temperature
    expect(page.locator("#label")).to_be_hidden()
    page.fill("#n", "40")
    page.fill("#temperature", "0.5")
    generate(page)
    expect(page.locator("#scatter")).to_be_visible()
    assert page.locator("#samples-table thead th").all_text_contents() == ["#", "x0", "x1"]
    rows = page.locator("#samples-table tbody tr")
    expect(rows).to_have_count(33)  # 32 rows and "… 8 more"
    assert rows.last.text_content() == "… 8 more"
    canvas = page.locator("#scatter").screenshot()
    assert len(np.unique(pixels(canvas))) > 2, "no points drawn"
    assert "seed " in page.text_content("#latency")


def test_text_model_streams(server: str, page: Page):
    open_page(page, server)
    pick(page, "gpt")
    expect(page.locator("#model-description")).to_have_text(re.compile(r"^GPT \(Radford"))
    for shown in ("#prompt", "#max-new-tokens", "#temperature", "#top-k", "#seed"):
        expect(page.locator(shown)).to_be_visible()
    expect(page.locator("#n")).to_be_hidden()
    settings = {"prompt": "To be, or not", "max_new_tokens": 40, "temperature": 1.0, "top_k": 20}
    page.fill("#prompt", settings["prompt"])
    page.fill("#max-new-tokens", "40")
    page.fill("#temperature", "1")
    page.fill("#top-k", "20")
    page.fill("#seed", str(SEED_MAX))  # past JavaScript's exact integers: sent as digits
    generate(page)
    text = page.text_content("#text-output")
    assert text
    pieces = page.eval_on_selector("#text-output", "o => o.childNodes.length")
    assert pieces > 1, "the text did not come as a stream of token events"
    latency = page.text_content("#latency")
    assert re.fullmatch(
        rf"first token [\d.]+ ms · total [\d.]+ ms · server [\d.]+ ms · seed {SEED_MAX}", latency
    )
    direct = post(f"{server}v1/models/gpt/generate", {**settings, "seed": SEED_MAX})
    assert text == direct["text"]


def play_two(page: Page, *, seed: int) -> list[float]:
    """Ask the page for 2 samples with `seed` and wait until the browser has loaded both
    players (it can play them); returns their durations in seconds."""
    page.fill("#n", "2")
    page.fill("#seed", str(seed))
    generate(page)
    page.wait_for_function(
        """n => { const players = [...document.querySelectorAll('#audio audio')];
                  return players.length === n
                    && players.every(a => a.readyState >= 1 && a.duration > 0); }""",
        arg=2,
    )
    return page.eval_on_selector_all("#audio audio", "ps => ps.map(p => p.duration)")


def test_audio_model_plays_its_samples(page: Page):
    """An audio model (tests/plugin/chirp.py, 0.5 s at 8 kHz): the page asks for WAVs and shows
    one <audio> player per sample, whose metadata the browser loads (it can play them)."""
    from genlab.serve.store import describe_model
    from plugin.chirp import Chirp, ChirpConfig

    service = Service()
    model = Chirp(ChirpConfig(data_shape=(1, 4000))).eval()
    service.add(describe_model("chirp", "v1", model, "memory", registry_name="chirp"))
    service.mark_ready()
    with serving(service) as url:
        open_page(page, url)
        expect(page.locator("#model option")).to_have_text(["chirp @ v1 (audio)"])
        durations = play_two(page, seed=11)
        assert durations == [pytest.approx(0.5, abs=0.01)] * 2
        captions = page.locator("#audio figcaption").all_text_contents()
        assert captions == [f"sample {i} · 0.50 s · 8000 Hz" for i in (1, 2)]
        expect(page.locator("#images")).to_be_hidden()
        direct = post(f"{url}v1/models/chirp/generate", {"n": 2, "seed": 11, "format": "wav"})
        sources = page.eval_on_selector_all("#audio audio", "ps => ps.map(p => p.src)")
        assert sources == [f"data:audio/wav;base64,{wav}" for wav in direct["audio"]]


def test_music_model_plays_its_songs_and_offers_their_midi(page: Page, tmp_path: Path):
    """A music model (a tiny MusicVAE): the page asks for WAVs, shows one <audio> player per
    sample that the browser can play, and a MIDI download link per sample whose file decodes
    to the notes the server sampled."""
    import base64

    from genlab.notes import read_midi
    from genlab.serve.encoders import MUSIC_RATE
    from music.test_music_serve import served_musicvae

    served, _ = served_musicvae()
    service = Service()
    service.add(served)
    service.mark_ready()
    with serving(service) as url:
        open_page(page, url)
        expect(page.locator("#model option")).to_have_text(["mvae @ 1 (music)"])
        durations = play_two(page, seed=5)
        direct = post(f"{url}v1/models/mvae/generate", {"n": 2, "seed": 5, "format": "wav"})
        assert durations == [pytest.approx(s, abs=0.01) for s in direct["seconds"]]
        captions = page.locator("#audio figcaption").all_text_contents()
        assert captions == [
            f"sample {i + 1} · {s:.2f} s · {MUSIC_RATE} Hz" for i, s in enumerate(direct["seconds"])
        ]
        links = page.locator("#audio figure a")
        expect(links).to_have_text(["MIDI", "MIDI"])
        names = links.evaluate_all("ls => ls.map(l => l.download)")
        assert names == ["sample-1.mid", "sample-2.mid"]
        hrefs = links.evaluate_all("ls => ls.map(l => l.href)")
        assert hrefs == [f"data:audio/midi;base64,{m}" for m in direct["midi"]]
        for i, midi in enumerate(direct["midi"]):
            path = tmp_path / f"{i}.mid"
            path.write_bytes(base64.b64decode(midi))
            assert len(read_midi(path).notes) > 0, "a sampled song has notes"


def test_api_key(page: Page):
    """A server with a key: the page asks for it in words a browser user can act on (not the
    API's "send the header 'Authorization: Bearer KEY'"), and lists the models once it works."""
    service = Service([f"dcgan={run('dcgan')}"], api_key="s3cret-key")
    with serving(service) as url:
        page.goto(url)
        page.wait_for_selector("body[data-state=needs-key]")
        prompt = page.locator("#key-message")
        expect(prompt).to_have_text("This server needs an API key: type it here")
        expect(prompt).to_be_visible()
        expect(page.locator("#api-key")).to_be_focused()
        expect(page.locator("#error")).to_be_hidden()
        expect(page.locator("#generate")).to_be_disabled()
        assert "Authorization" not in page.inner_text("body")  # what a person sees

        page.fill("#api-key", "not-the-key")
        page.press("#api-key", "Enter")
        expect(prompt).to_have_text("Wrong API key: check it and type it again")
        expect(page.locator("body")).to_have_attribute("data-state", "needs-key")

        page.fill("#api-key", "s3cret-key")
        page.click("#use-key")
        page.wait_for_selector("body[data-state=ready]")
        expect(prompt).to_be_hidden()
        expect(page.locator("#model option")).to_have_count(1)
        expect(page.locator("#model-description")).to_have_text(re.compile(r"^DCGAN \(Radford"))
        generate(page)
        expect(page.locator("#images img")).to_have_count(4)  # the default n
        assert page.evaluate("sessionStorage.getItem('genlab-api-key')") == "s3cret-key"

        page.reload()  # the key is kept for the tab's session
        page.wait_for_selector("body[data-state=ready]")
        expect(page.locator("#api-key")).to_have_value("s3cret-key")


# --- the Upload tab: image to image ----------------------------------------------------------
TESTS = Path(__file__).resolve().parents[1]
# `genlab serve` in a process of its own that first registers the test translator (a family
# genlab has never seen), as a family's own registry entry would
SERVE_WITH_PLUGIN = (
    "import sys; from genlab import registry; "
    "registry.MODELS['negative'] = ('plugin.negative:Negative', 'a test translator'); "
    "from genlab.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture(scope="module")
def translator_server(tmp_path_factory) -> Iterator[str]:
    """A real server process (uvicorn, `genlab serve`) holding the plugin translator (a
    contract.Translator taking an image and a style) and dcgan; yields the page's URL."""
    import sys

    from test_docker import container_env, free_port, serving

    from plugin.negative import write_run

    folder = tmp_path_factory.mktemp("upload")
    negative = write_run(folder / "negative", gain=0.5)
    port = free_port()
    argv = [sys.executable, "-c", SERVE_WITH_PLUGIN, "serve", f"negative={negative}"]
    argv += [f"dcgan={run('dcgan')}", "--port", str(port)]
    env = container_env(PYTHONPATH=str(TESTS))
    with serving(argv, port, env, folder / "server.log") as server:
        yield f"{server.url}/"


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(page: Page, name: str, filename: str, data: bytes, kind: str = "image/png") -> None:
    page.set_input_files(
        f"#upload-{name}", files=[{"name": filename, "mimeType": kind, "buffer": data}]
    )


def test_upload_tab_translates_an_image(translator_server: str, page: Page):
    import httpx

    open_page(page, translator_server)
    pick(page, "dcgan")
    expect(page.locator("#tabs")).to_be_hidden()  # dcgan does not translate
    pick(page, "negative")
    expect(page.locator("#tabs")).to_be_visible()
    expect(page.locator("#generate")).to_be_visible()  # the Generate tab comes first
    expect(page.locator("#translate")).to_be_hidden()
    page.click("#tab-upload")
    expect(page.locator("#tab-upload")).to_have_attribute("aria-selected", "true")
    for shown in ("#upload-image", "#upload-style", "#translate-amount", "#translate-scale"):
        expect(page.locator(shown)).to_be_visible()  # from v1/models: its inputs and options
    for hidden in ("#n", "#seed", "#generate", "#translate-slow"):
        expect(page.locator(hidden)).to_be_hidden()  # `slow` is an option of the CLI only
    photo = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    style = np.full((4, 4, 3), [255, 128, 0], dtype=np.uint8)
    upload(page, "image", "photo.png", png_bytes(photo))
    upload(page, "style", "style.png", png_bytes(style))
    expect(page.locator("#preview-image")).to_be_visible()
    expect(page.locator("#preview-style")).to_be_visible()
    page.fill("#translate-amount", "0.75")
    page.fill("#translate-scale", "3")
    page.click("#translate")
    page.wait_for_selector("body[data-state=done], body[data-state=error]")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-state", "done")
    sizes = page.eval_on_selector_all(
        "#preview-image, #result", "images => images.map(i => [i.naturalWidth, i.naturalHeight])"
    )
    assert sizes == [[12, 8], [36, 24]]  # scale 3
    assert re.fullmatch(
        r"server [\d.]+ ms · round trip [\d.]+ ms · 12×8 → 36×24", page.text_content("#latency")
    )
    expect(page.locator("#result-caption")).to_have_text("result 36×24")
    before, after = (page.locator(f"#{i}").bounding_box() for i in ("preview-image", "result"))
    assert after["x"] > before["x"] and after["y"] == before["y"]  # side by side
    # what the page shows is what the route answers for the same files and options
    shown = page.evaluate(
        """async () => { const answer = await fetch(document.getElementById("result").src);
                         return Array.from(new Uint8Array(await answer.arrayBuffer())); }"""
    )
    direct = httpx.post(
        f"{translator_server}v1/models/negative/translate",
        files={"image": ("p.png", png_bytes(photo)), "style": ("s.png", png_bytes(style))},
        data={"amount": "0.75", "scale": "3"},
        timeout=60,
    )
    assert direct.status_code == 200 and bytes(shown) == direct.content
    grid = pixels(page.locator("#result").screenshot())
    assert len(np.unique(grid)) > 10, "the result did not render"


def test_upload_tab_shows_4xx_errors(translator_server: str, page: Page):
    open_page(page, translator_server)
    pick(page, "negative")
    page.click("#tab-upload")
    style = png_bytes(np.full((4, 4, 3), 255, dtype=np.uint8))
    upload(page, "style", "style.png", style)
    page.click("#translate")  # no image chosen: said before anything is sent
    expect(page.locator("#error")).to_have_text("image: choose an image file")
    upload(page, "image", "notes.txt", b"not a picture", "text/plain")
    page.click("#translate")
    page.wait_for_selector("body[data-state=error]")
    expect(page.locator("#error")).to_have_text(
        "image: not an image (PNG, JPEG, BMP, GIF, WebP, TIFF)"
    )
    expect(page.locator("#result-figure")).to_be_hidden()
    upload(page, "image", "photo.png", style)
    page.fill("#translate-amount", "3")
    page.click("#translate")
    expect(page.locator("#error")).to_have_text("amount must be a number <= 1.0, got 3.0")
    page.fill("#translate-amount", "")
    page.click("#translate")
    page.wait_for_selector("body[data-state=done]")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#result-figure")).to_be_visible()
    page.click("#tab-generate")  # back to samples: the model's own
    expect(page.locator("#translation")).to_be_hidden()
    generate(page)
    expect(page.locator("#images img")).to_have_count(4)
