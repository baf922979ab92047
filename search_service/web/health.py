"""The health canary: ``/healthz`` says ok only when the service can serve its home page and a search.

An open index is not enough: an article the store accepted but the pages cannot encode
(the invalid Unicode of issue 11) leaves the index open while ``/`` and every search that
finds the article answer 500. So the canary does what a visitor does, through the same code:
the home page (latest articles) and a search for words of its first title, each rendered as
the results page and encoded as the API's JSON. Its verdict is kept for
:data:`CANARY_SECONDS`, so monitoring that polls often costs one search every few seconds
(cached by the engine while the index does not change).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time

from flask import Flask, render_template

from ..engine.request import SearchRequest
from ..errors import Unhealthy

log = logging.getLogger(__name__)

CANARY_KEY = "health_canary"
#: How long one verdict of the canary is reused.
CANARY_SECONDS = 2.0
# Query syntax characters, removed from the title the canary searches for.
_SYNTAX = re.compile(r"""[()（）"“”「」『』＂*:：|&\-]""")
_lock = threading.Lock()


def canary(app: Flask) -> None:
    """Raise :class:`Unhealthy` with the reason when the last probe (at most a few seconds old) failed."""
    state = app.extensions.get(CANARY_KEY)
    if state is None or time.monotonic() - state[0] > CANARY_SECONDS:
        with _lock:
            state = app.extensions.get(CANARY_KEY)
            if state is None or time.monotonic() - state[0] > CANARY_SECONDS:
                previous = state[1] if state else None
                state = (time.monotonic(), _probe(app))
                app.extensions[CANARY_KEY] = state
                if state[1] and state[1] != previous:
                    log.warning("health canary failed: %s", state[1])
    if state[1]:
        raise Unhealthy(f"The index is open but pages cannot be served: {state[1]}. "
                        "See the server log; a recently written article may be the cause.")


def degradations(app: Flask) -> dict[str, str]:
    """What works at reduced strength right now, by component: the service still answers every
    request, but an operator should look (``/healthz`` says ``degraded``; ``/metrics`` has
    ``search_service_degraded{component=…}``).

    * ``rate_limit``: the shared counters file cannot be used, so each worker counts a client
      on its own (the limit is up to ``workers`` times looser) until it can;
    * ``analytics``: searches are not being recorded (each lost event is counted in
      ``search_service_analytics_events_failed_total``).
    """
    from . import SERVER_PATHS_KEY
    from .limits import limit_storage
    from .tracking import recorder_of

    paths = app.config.get(SERVER_PATHS_KEY, ())
    found: dict[str, str] = {}
    problem = getattr(limit_storage(app), "problem", None)
    if problem:
        found["rate_limit"] = f"rate-limit counters not shared between workers ({problem}); each counts on its own"
    problem = getattr(recorder_of(app), "problem", None)
    if problem:
        found["analytics"] = f"searches are not being recorded: {problem}"
    # Reasons quote exceptions, which may name the server's files: folders by their setting.
    from . import public_message

    return {component: public_message(reason, paths) for component, reason in found.items()} if found else found


def _probe(app: Flask) -> str | None:
    """None when the home page and a search render; else what failed, in one line."""
    from . import engine_of
    from .pages import ResultsView

    settings = app.config["SETTINGS"]
    engine = engine_of(app)
    step = "the home page"
    try:
        requests = [SearchRequest()]
        for req in requests:
            results = engine.search(req)
            view = ResultsView(req, results, settings)
            render_template("search.html", req=req, results=results, view=view).encode("utf-8")
            json.dumps(results.to_json(), ensure_ascii=False).encode("utf-8")
            if not req.q and results.hits:
                words = " ".join(_SYNTAX.sub(" ", results.hits[0].title).split()[:3])[:40]
                if words:
                    step = f"a search for {words!r}"
                    requests.append(SearchRequest(q=words))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure is the verdict
        return f"{step} failed with {type(exc).__name__}: {str(exc)[:200]}"
