"""A real Chromium for the course: find it, drive it headless with Playwright, always stop it.

    with static_server(folder) as url, chromium() as browser:
        page = browser.new_page()
        page.goto(url + "/index.html")

The course uses the system's Chromium (Debian: ``apt-get install chromium``), never a browser
that Playwright downloads. ``COURSE_CHROMIUM`` names another executable. Where no Chromium
exists, :func:`chromium` raises :class:`BrowserUnavailable` with what to install.

Playwright's synchronous API refuses to run in a thread that has an asyncio loop (a Jupyter
kernel's main thread has one); :func:`in_browser` runs a function in a worker thread instead,
so notebooks call that.
"""

import contextlib
import functools
import http.server
import os
import shutil
import socket
import threading
from pathlib import Path

from .errors import CourseError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# Headless, and quiet on a machine without internet: no background requests to Google's hosts.
FLAGS = (
    "--no-sandbox",  # needed as root (CI containers); harmless otherwise
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


class BrowserUnavailable(CourseError):
    """No Chromium (or no Playwright) on this machine: the message says what to install."""


def find_chromium():
    """Return the path of a Chromium executable, or None (``COURSE_CHROMIUM`` wins)."""
    named = os.environ.get("COURSE_CHROMIUM")
    if named:
        return named if Path(named).is_file() else shutil.which(named)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_version(path=None):
    """Return Chromium's version line (e.g. 'Chromium 156.0.8078.108 ...'), or None."""
    import subprocess

    path = path or find_chromium()
    if not path:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def why_unavailable():
    """Return why no browser can be started here (a sentence), or None when one can."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)."
    if not find_chromium():
        return (
            "no Chromium was found (Debian/Ubuntu: sudo apt-get install chromium; or set "
            "COURSE_CHROMIUM to a Chromium or Chrome executable)."
        )
    return None


@contextlib.contextmanager
def chromium(timeout_ms=30_000):
    """Yield a headless Playwright ``Browser`` on the system Chromium; close it on exit."""
    problem = why_unavailable()
    if problem:
        raise BrowserUnavailable(f"Cannot start a browser: {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=find_chromium(), headless=True, args=list(FLAGS), timeout=timeout_ms
        )
        try:
            yield browser
        finally:
            browser.close()


def in_browser(fn, timeout=120):
    """Return ``fn(browser)`` run in a worker thread with a fresh headless Chromium.

    Safe to call from a Jupyter kernel (whose own thread runs an asyncio loop). Raises
    :class:`BrowserUnavailable` where no browser can be started, and TimeoutError after
    ``timeout`` seconds.
    """
    result, error = [], []

    def work():
        try:
            with chromium() as browser:
                result.append(fn(browser))
        except BaseException as err:  # re-raised in the caller's thread
            error.append(err)

    thread = threading.Thread(target=work, name="course-browser", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the browser did not finish within {timeout} s")
    if error:
        raise error[0]
    return result[0]


def free_port(host="127.0.0.1"):
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".onnx": "application/octet-stream",
    }

    def log_message(self, *args):  # no request log on stderr
        pass


@contextlib.contextmanager
def static_server(folder, host="127.0.0.1"):
    """Serve ``folder`` over HTTP on ``host`` and a free port; yield the base URL; stop on exit."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="course-static", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
