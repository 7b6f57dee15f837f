"""Open a report in headless Chromium (Debian's ``chromium`` + ``chromium-driver``, through selenium)
and say what a person would see: which players load, which images load, what the tables hold, and
whether the page asked the network for anything.

No browser is downloaded: a missing one fails the test with the command that installs it.
"""
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

INSTALL = ("apt-get update && apt-get install -y chromium chromium-driver && pip install selenium "
           "(or `make browser` and `pip install -e '.[test]'`)")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--mute-audio", "--window-size=1280,900",
         # A request would fail fast instead of waiting for a network that is not there; it is still
         # recorded, and the test fails on it.
         "--host-resolver-rules=MAP * ~NOTFOUND")
LOCAL_SCHEMES = ("file", "data", "blob", "about", "chrome", "chrome-error", "devtools")

_COLLECT = """
const audios = [...document.querySelectorAll('audio')].map(a => ({
  src: a.currentSrc || a.src, readyState: a.readyState, duration: a.duration,
  error: a.error ? a.error.code : null}));
const images = [...document.querySelectorAll('img')].map(i => ({
  src: i.currentSrc || i.src, complete: i.complete, naturalWidth: i.naturalWidth}));
const tables = [...document.querySelectorAll('table')].map(t =>
  [...t.rows].map(r => [...r.cells].map(c => c.innerText.trim())));
const links = [...document.querySelectorAll('a')].map(a => a.href);
return JSON.stringify({audios, images, tables, links, title: document.title,
  text: document.body.innerText, height: document.documentElement.scrollHeight});
"""


def _binaries():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail(f"selenium is not installed; install it with: {INSTALL}")
    if not chromium or not driver:
        pytest.fail(f"headless Chromium is needed (chromium: {chromium}, chromedriver: {driver}); install it "
                    f"with: {INSTALL}")
    return chromium, driver


def open_report(page, screenshot=None, timeout=60):
    """Load ``page`` from disk in headless Chromium and describe it.

    Args:
        page (str or Path): The HTML file.
        screenshot (str or Path, optional): Where to save a full-page PNG screenshot.
        timeout (float): Seconds to wait for every ``<audio>`` to load its metadata or fail.

    Returns:
        dict: ``audios`` (src, readyState, duration, error code), ``images`` (src, complete,
        naturalWidth), ``tables`` (cell texts), ``links``, ``title``, ``text`` and ``requests``
        (every URL the page requested, from Chromium's network log).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="twostep-chromium-")  # a fresh profile each time
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.get_log("performance")  # drop what the browser's start page loaded (chrome:// only)
        driver.get(Path(page).resolve().as_uri())
        deadline = time.time() + timeout
        while True:
            info = json.loads(driver.execute_script(_COLLECT))
            pending = [a for a in info["audios"] if a["readyState"] < 1 and a["error"] is None]
            images_pending = [i for i in info["images"] if not i["complete"]]
            if (not pending and not images_pending) or time.time() > deadline:
                break
            time.sleep(0.2)
        info["requests"] = [json.loads(entry["message"])["message"]["params"]["request"]["url"]
                            for entry in driver.get_log("performance")
                            if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"]
        if screenshot is not None:
            driver.set_window_size(1280, min(int(info["height"]) + 40, 20000))
            driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return info


def local_path(url):
    """The file a ``file://`` URL names."""
    return Path(unquote(urlparse(url).path))


def problems(info):
    """What is wrong with a loaded report, as a list of sentences (empty: nothing).

    Every ``<audio>`` must have loaded (metadata, a duration > 0, no error) a file that soundfile
    decodes; every image must have loaded (naturalWidth > 0); no request may leave ``file://``.
    """
    import soundfile as sf

    found = []
    for audio in info["audios"]:
        if audio["error"] is not None or audio["readyState"] < 1 or not (audio["duration"] or 0) > 0:
            found.append(f"audio not playable in the browser: {audio}")
        if not audio["src"].startswith("file://"):
            found.append(f"audio not a local file: {audio['src']}")
            continue
        path = local_path(audio["src"])
        try:
            data, _ = sf.read(str(path))
            if len(data) == 0:
                found.append(f"audio file is empty: {path}")
        except Exception as err:  # a missing or undecodable file
            found.append(f"audio file does not decode: {path} ({err})")
    for image in info["images"]:
        if not image["complete"] or image["naturalWidth"] <= 0:
            found.append(f"image not loaded: {image['src']}")
    for url in info["requests"]:
        if urlparse(url).scheme not in LOCAL_SCHEMES:
            found.append(f"network request: {url}")
    return found


def artefact_dir(tmp_path):
    """Where screenshots go: ``$TWOSTEP_TEST_ARTEFACTS`` when set (CI can keep it), else the test's tmp dir."""
    folder = Path(os.environ.get("TWOSTEP_TEST_ARTEFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
