"""Run the app under waitress (``search-service serve``), with a graceful stop on SIGTERM/SIGINT."""

from __future__ import annotations

import faulthandler
import logging
import signal

from waitress.server import create_server

from ..config import Settings
from . import close_app, create_app

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Build the app (jieba loaded, index opened) and serve until SIGTERM or Ctrl-C.

    On the signal: stop accepting connections, let requests in flight finish, then
    commit the writes already queued and stop the writer.
    """
    app = create_app(settings)
    # With trusted_proxies set, X-Forwarded-For must reach the app, whose TrustedProxies
    # middleware believes it only from those addresses (and drops it from anyone else).
    server = create_server(app, host=settings.host, port=settings.port, threads=settings.threads,
                           ident="search_service", clear_untrusted_proxy_headers=not settings.trusted_proxies)

    def stop(signum, _frame) -> None:
        log.info("%s: no new connections; finishing requests in flight", signal.Signals(signum).name)
        server.close()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    # `kill -USR1 <pid>` prints every thread's stack to stderr: for diagnosing a stuck server.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    log.info("serving on http://%s:%s/ with %d threads", settings.host, settings.port, settings.threads)
    try:
        server.run()
    except OSError:
        pass  # the loop noticed the closed listener
    finally:
        server.task_dispatcher.shutdown(timeout=30)
        close_app(app)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("stopped")
