"""Endpoints whose work grows with the data they return: their own rate limits and a cap on how
many run at once.

The public rate limit (``rate_limit``, 20 requests a second) counts requests, and a search costs
a few milliseconds; a CSV export of a thousand rows or the page of a 1 MB article costs a
hundred times more. One client within that limit asking only for exports moved other clients'
median search from 15 to 234 ms. So views marked :func:`costly` get, on top of the public limit:

* a per-client limit of their kind: ``export_rate_limit`` (``/search.csv``) and
  ``article_rate_limit`` (``/doc/…``, ``/api/documents/…`` and ``…/similar``), shared by the
  views of one kind;
* a per-process cap (``costly_concurrency``): at most that many costly requests run at once in
  a worker, the others wait up to :data:`WAIT_SECONDS` for a turn and then get 503 with
  ``Retry-After``; searches keep the remaining threads.

Requests with a valid bearer token (the site's own scripts) are exempt from the rate limits, as
from the public one, but not from the cap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from ..config import Settings
from ..errors import ServerBusy

__all__ = ["KINDS", "WAIT_SECONDS", "costly", "costly_kind", "install_costly_gate"]

View = TypeVar("View", bound=Callable[..., Any])
_ATTR = "costly_kind"
#: The kinds of costly view and the setting that limits each per client.
KINDS = {"export": "export_rate_limit", "article": "article_rate_limit"}
#: How long a costly request waits for a turn before it is answered 503.
WAIT_SECONDS = 10.0
GATE_KEY = "costly_gate"


def costly(kind: str) -> Callable[[View], View]:
    """Mark a view as costly of ``kind`` (a key of :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown costly kind {kind!r}")

    def mark(view: View) -> View:
        setattr(view, _ATTR, kind)
        return view

    return mark


def costly_kind(view) -> str | None:
    """The kind :func:`costly` gave ``view`` (None for ordinary views)."""
    return getattr(view, _ATTR, None)


def install_costly_gate(app: Flask, settings: Settings) -> None:
    """At most ``costly_concurrency`` costly requests at once in this process (0: no cap)."""
    if settings.costly_concurrency <= 0:
        return
    gate = threading.BoundedSemaphore(settings.costly_concurrency)
    app.extensions[GATE_KEY] = gate

    @app.before_request
    def take_a_turn() -> None:
        view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
        if costly_kind(view) is None:
            return
        if not gate.acquire(timeout=WAIT_SECONDS):
            raise ServerBusy(
                f"Too many exports and article pages are being served at once (setting costly_concurrency = "
                f"{settings.costly_concurrency} per worker); searches are not affected. Retry in a few seconds.")
        g.costly_turn = True

    @app.teardown_request
    def give_the_turn_back(_error: BaseException | None) -> None:
        if g.pop("costly_turn", False):
            gate.release()
