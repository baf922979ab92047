"""What the browser tests share that is not a fixture: tabs that record what they saw, the widget's host page.

The fixtures built on these (``browser``, ``tab``, ``widget_site``) are in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .helpers import FIXTURES, REPO

CHROMIUM = Path("/usr/bin/chromium")
# As the machine's probe starts it: no sandbox as root, and no background connections
# (the network is closed; Chromium would keep retrying).
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync"]
HOST_DIR = FIXTURES / "widget_host"
ARTIFACTS = REPO / "test-artifacts"
TIMEOUT_MS = 8000


@dataclass
class Tab:
    """A page plus what it saw: dialogs, script errors, CSP violations, requests."""

    page: object
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def suggest_requests(self) -> list[str]:
        return [url for url in self.requests if "/api/suggest?" in url]

    def check_clean(self) -> None:
        assert not self.dialogs, f"a dialog opened (script injection?): {self.dialogs}"
        assert not self.errors, f"script errors or CSP violations: {self.errors}"


def open_tab(browser, **context_options) -> tuple[object, Tab]:
    """A new browser context (Chinese locale, Shanghai time, 1280×900 unless told) and a recording tab in it."""
    options = {"viewport": {"width": 1280, "height": 900}, **context_options}
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    tab = Tab(page)

    def on_dialog(dialog):
        tab.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message):
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused to" in text):
            tab.errors.append(text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    page.on("request", lambda request: tab.requests.append(request.url))
    return context, tab


class HostPageHandler(http.server.SimpleHTTPRequestHandler):
    """Serves tests/fixtures/widget_host, with http://SEARCH-HOST pointed at the live search server."""

    search_url = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(HOST_DIR), **kwargs)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if urlsplit(self.path).path in ("/", "/index.html"):
            body = (HOST_DIR / "index.html").read_text("utf-8").replace("http://SEARCH-HOST", self.search_url)
            data = body.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        super().do_GET()

    def log_message(self, format, *args):  # noqa: A002 (quiet test output)
        pass


@contextlib.contextmanager
def host_page(port: int, search_url: str) -> Iterator[str]:
    """The institute's demo page with the widget, on its own origin (``port``); yields its URL."""
    handler = type("HostHandler", (HostPageHandler,), {"search_url": search_url})
    host = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=host.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        host.shutdown()
        host.server_close()
        thread.join(timeout=5)


def params_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def screenshot(page, name: str, **options) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), **options)


def summary_total(page) -> int:
    text = page.locator("#summary").inner_text()
    return int(text.split("找到 ")[1].split(" 条")[0])
