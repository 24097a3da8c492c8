"""The app in a real browser: every page renders in headless Chromium without an exception.

Starts `streamlit run app.py` on a free loopback port (tiny_cnn, an isolated disk cache), opens
each page of pages/N_*.py (discovered, so new pages are covered as they land), waits until the
script run is over and the page title is visible, asserts that no exception box and no
traceback is shown, and keeps a screenshot per page in test-artifacts/screenshots/. One real
interaction: σ changed in the sidebar, kept across a page switch.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("RSVIZ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 900}
PAGE_TIMEOUT_S = 45.0
SIGMA_INPUT = 'input[aria-label="σ (noise std, pixel units of [0,1])"]'


def discover_pages() -> list[tuple[str, str]]:
    """(file stem, URL path) of every page, in app.py's order; the first page is served at /."""
    files = sorted((ROOT / "pages").glob("[0-9]*.py"))
    return [(p.stem, "" if i == 0 else re.sub(r"^\d+_", "", p.stem).lower())
            for i, p in enumerate(files)]


PAGES = discover_pages()
pytestmark = pytest.mark.skipif(
    not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)),
    reason=f"Chromium is not installed ({CHROMIUM} missing; apt-get install chromium, "
           "which .ci/run does)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(model: str, cache: Path, log_name: str):
    """A running `streamlit run app.py` on `model` with its own disk cache; yields its URL; its
    log lands in test-artifacts/."""
    port = free_port()
    log_path = SHOTS.parent / log_name
    env = {**os.environ, "RSVIZ_MODEL": model, "RSVIZ_OFFLINE": "1",
           "RSVIZ_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited ({proc.returncode}):\n{log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start in 60 s:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app on tiny_cnn."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):  # artefacts of this run only
        old.unlink()
    with served("tiny_cnn", tmp_path_factory.mktemp("browser_cache"), "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api  # pinned in requirements.txt: missing must fail
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def first_page(browser, app_url):
    """The first page, loaded once: rendered by one test, then interacted with by another."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.goto(app_url, wait_until="domcontentloaded")
    yield page
    context.close()


# Rendered: the script run is over, no status widget, no lazy-loading skeleton, no element left
# stale from the previous run, and every plotly chart drawn.
_READY_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"], '
      + '[data-testid="stAppSkeleton"], [data-stale="true"]')) return false;
  return [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
      .every(chart => chart.querySelector('.main-svg'));
}"""


_WHY_JS = """() => ({
  state: document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state'),
  status: document.querySelectorAll('[data-testid="stStatusWidget"]').length,
  skeletons: document.querySelectorAll('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]').length,
  stale: document.querySelectorAll('[data-stale="true"]').length,
  undrawn_charts: [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
      .filter(chart => !chart.querySelector('.main-svg')).length,
})"""


def wait_rendered(page, timeout_s: float = PAGE_TIMEOUT_S) -> None:
    """Until the page is rendered (see _READY_JS) for 0.6 s in a row and its title shows."""
    deadline = time.monotonic() + timeout_s
    page.locator('[data-testid="stMain"] h1').first.wait_for(state="visible",
                                                              timeout=timeout_s * 1000)
    ready_since = None
    while time.monotonic() < deadline:
        if not page.evaluate(_READY_JS):
            ready_since = None
        elif ready_since is None:
            ready_since = time.monotonic()
        elif time.monotonic() - ready_since > 0.6:
            return
        page.wait_for_timeout(200)
    pytest.fail(f"page not rendered after {timeout_s:.0f} s: {page.evaluate(_WHY_JS)}")


def problems(page) -> list[str]:
    """Exception boxes, and error/alert boxes that show a traceback."""
    found = [f"exception box: {t[:300]}" for t in
             page.locator('[data-testid="stException"]').all_inner_texts()]
    found += [f"traceback in alert: {t[:300]}" for t in
              page.locator('[data-testid="stAlert"]').all_inner_texts()
              if "Traceback" in t or 'File "' in t]
    return found


def screenshot(page, name: str) -> Path:
    """The whole page: Streamlit scrolls inside stMain, so grow the viewport to its height."""
    height = page.evaluate(
        "() => Math.max(...['stMain', 'stSidebarContent'].map(id => "
        "(document.querySelector(`[data-testid=\"${id}\"]`) || {scrollHeight: 0}).scrollHeight))")
    page.set_viewport_size({"width": VIEWPORT["width"],
                            "height": max(VIEWPORT["height"], min(int(height), 8000))})
    page.wait_for_timeout(400)  # responsive plotly charts re-layout
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size(VIEWPORT)
    return path


@pytest.mark.parametrize("stem,url_path", PAGES, ids=[s for s, _ in PAGES])
def test_page_renders_in_chromium(request, app_url, stem, url_path):
    if url_path == "":
        page = request.getfixturevalue("first_page")
    else:
        page = request.getfixturevalue("page")
        page.goto(f"{app_url}/{url_path}", wait_until="domcontentloaded")
    wait_rendered(page)
    path = screenshot(page, stem)
    assert page.locator('[data-testid="stApp"]').get_attribute(
        "data-test-connection-state") == "CONNECTED"
    found = problems(page)
    assert not found, f"{stem} ({path}): " + " | ".join(found)


def open_export_popover(page) -> bool:
    """Open the first figure's PNG · SVG · PDF popover (inside an "Export" expander if any)."""
    expander = page.locator('[data-testid="stExpander"] summary', has_text="Export")
    if expander.count():
        expander.first.click()
    popover = page.locator('[data-testid="stPopover"] button', has_text="PNG · SVG · PDF")
    if not popover.count():
        return False
    popover.first.click()
    return True


def test_first_page_interactions(first_page):
    """σ changed in the sidebar flows into an exported PNG and survives a page switch."""
    from rsviz.figures.export import read_metadata

    page = first_page
    wait_rendered(page)
    sigma = page.locator(SIGMA_INPUT)
    sigma.fill("0.5")
    sigma.press("Enter")
    page.wait_for_timeout(300)
    wait_rendered(page)
    assert problems(page) == []
    if open_export_popover(page):  # a real download: deferred export through kaleido
        button = page.locator('[data-testid="stPopoverBody"] [data-testid="stDownloadButton"] '
                              'button', has_text="PNG")
        with page.expect_download(timeout=60_000) as download:
            button.first.click()
        target = SHOTS / f"export_{download.value.suggested_filename}"
        download.value.save_as(target)
        params = read_metadata(target)["params"]
        assert params["sigma"] == pytest.approx(0.5) and params["model"] == "tiny_cnn"
        page.keyboard.press("Escape")
    if len(PAGES) > 1:
        stem, url_path = PAGES[-1]
        page.locator(f'[data-testid="stSidebarNav"] a[href$="/{url_path}"]').click()
        page.wait_for_url(re.compile(f"/{url_path}(\\?.*)?$"))  # settings ride in the query
        wait_rendered(page)
        assert problems(page) == []
    assert float(page.locator(SIGMA_INPUT).input_value()) == pytest.approx(0.5)


STARTS = [("2_Boundary_slice", "boundary_slice", "Compute the slice"),
          ("3_Profile_and_SORM", "profile_and_sorm", "Compute profile"),
          ("4_Dichotomy", "dichotomy", "Run dichotomies"),
          ("5_Live_attack", "live_attack", "Run the attack")]


@pytest.mark.parametrize("stem,url_path,label", STARTS, ids=[s for s, _, _ in STARTS])
def test_start_draws_the_figure(page, app_url, stem, url_path, label):
    """Start on every view page, at its quick defaults (tiny CNN): the job runs to its end and
    its figure is drawn, with no traceback anywhere."""
    if not any(url == url_path for _, url in PAGES):
        pytest.fail(f"no page {url_path}")
    page.goto(f"{app_url}/{url_path}", wait_until="domcontentloaded")
    wait_rendered(page)
    charts_before = page.locator('[data-testid="stPlotlyChart"]').count()
    if page.get_by_text("Page not found").count():  # a deep link's first load (app.url_path)
        page.keyboard.press("Escape")
        page.wait_for_timeout(300)
    page.get_by_role("button", name=label).first.click()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        done = page.locator('[data-testid="stPlotlyChart"]').count() > charts_before
        running = page.get_by_role("button", name="Cancel").count()
        if done and not running:
            break
    wait_rendered(page)
    path = screenshot(page, f"{stem}_started")
    assert page.locator('[data-testid="stPlotlyChart"]').count() > charts_before, path
    assert problems(page) == [], path


def test_cifar10_model_in_chromium(browser, tmp_path):
    """The 32×32 path in a real browser (the CIFAR-10-shaped test model): Image & model shows
    CIFAR-10 classes; a slice and an attack run from settings given in the URL and draw."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        with served("cifar10_resnet8_random", tmp_path / "cache", "streamlit_cifar.log") as url:
            page.goto(url, wait_until="domcontentloaded")
            wait_rendered(page, 90)
            text = page.locator('[data-testid="stMain"]').inner_text()
            assert sum(name in text for name in ("airplane", "automobile", "bird", "cat",
                                                 "deer", "dog", "frog", "horse", "ship",
                                                 "truck")) >= 3, screenshot(page, "cifar_image")
            for path, label in (("boundary_slice?sl_grid=5&sl_N=10&sl_ns=5",
                                 "Compute the slice"),
                                ("live_attack?attack_budget=20&attack_target=f",
                                 "Run the attack")):
                page.goto(f"{url}/{path}", wait_until="domcontentloaded")
                wait_rendered(page, 90)
                if page.get_by_text("Page not found").count():
                    page.keyboard.press("Escape")
                    page.wait_for_timeout(300)
                before = page.locator('[data-testid="stPlotlyChart"]').count()
                page.get_by_role("button", name=label).first.click()
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    page.wait_for_timeout(1000)
                    if (page.locator('[data-testid="stPlotlyChart"]').count() > before
                            and not page.get_by_role("button", name="Cancel").count()):
                        break
                wait_rendered(page, 90)
                shot = screenshot(page, f"cifar_{path.split('?')[0]}")
                assert page.locator('[data-testid="stPlotlyChart"]').count() > before, shot
                assert problems(page) == [], shot
    finally:
        context.close()
