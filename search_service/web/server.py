"""Run the app under waitress (``search-service serve``)."""

from __future__ import annotations

import logging

from waitress import serve as waitress_serve

from ..config import Settings
from . import create_app

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Build the app (jieba loaded, index opened) and serve it until interrupted."""
    app = create_app(settings)
    log.info("serving on http://%s:%s/ with %d threads", settings.host, settings.port, settings.threads)
    waitress_serve(app, host=settings.host, port=settings.port, threads=settings.threads,
                   ident="search_service", clear_untrusted_proxy_headers=True)
