"""Who may write, see the staff pages, or skip the public rate limit: the bearer-token check.

One check for every caller (the write API, the admin pages, the rate limit and the
analytics channel): the ``Authorization`` header's secret is compared with every
configured secret in constant time, so neither the answer's timing nor an early
exit tells a guesser how much of a token was right.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable

from flask import request

from ..config import Settings
from ..errors import Forbidden, Unauthorized


def api_tokens(settings: Settings) -> tuple[str, ...]:
    """The configured ``api_tokens``, empty entries left out (an empty token opens nothing)."""
    return tuple(token for token in settings.api_tokens if token)


def bearer_secret() -> bytes | None:
    """The secret of ``Authorization: Bearer <secret>`` as the bytes sent, or None when there is none."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    secret = _sent_bytes(value).strip()  # bytes.strip: ASCII whitespace only, never part of a character
    if scheme.lower() != "bearer" or not secret:
        return None
    return secret


def _sent_bytes(value: str) -> bytes:
    """A header value as the client sent it: WSGI servers decode header bytes as Latin-1 (PEP 3333).

    Encoding it as UTF-8 instead would turn a token with a non-ASCII character into other
    bytes than the configured one's, and it could never match.
    """
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # text that never was bytes on the wire (set in-process)
        return value.encode("utf-8")


def basic_password() -> bytes | None:
    """The password of ``Authorization: Basic <base64 user:password>`` (any user), or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    _, sep, password = decoded.partition(b":")
    return password if sep and password else None


def matches_any(supplied: bytes, secrets: Iterable[str]) -> bool:
    """True when ``supplied`` equals one of ``secrets``; every one is compared, in constant time."""
    matched = False
    for secret in secrets:  # no early exit: the time taken does not say which one matched
        matched |= hmac.compare_digest(supplied, secret.encode("utf-8"))
    return matched


def has_valid_token(settings: Settings) -> bool:
    """True when the request carries one of the ``api_tokens`` as its bearer token."""
    supplied = bearer_secret()
    return supplied is not None and matches_any(supplied, api_tokens(settings))


#: The challenge of a 401 from the write API (RFC 9110 §11.6.1; the Bearer scheme of RFC 6750).
CHALLENGE = 'Bearer realm="search_service"'


def require_token(settings: Settings) -> None:
    """Let a write through only with a valid bearer token (RFC 9110 §15.5.2 and §15.5.4, RFC 6750 §3.1).

    * no ``Authorization`` header, or not a bearer token (another scheme, no token): :class:`Unauthorized`
      (401) with ``WWW-Authenticate: Bearer realm="search_service"``: the client has to authenticate;
    * a bearer token that is not one of the configured ``api_tokens``: :class:`Unauthorized` with
      ``error="invalid_token"`` in the challenge;
    * a bearer token while no token is configured (writes are off): :class:`Forbidden` (403): no
      credentials can be allowed, so asking for others would not help.

    The credentials are looked at before anything else of the request: a client without them
    learns nothing about its body or id.
    """
    tokens = api_tokens(settings)
    supplied = bearer_secret()
    if supplied is None:
        off = (" Writes are disabled on this server (no api_tokens configured), so no token will be accepted "
               "until an operator sets SEARCH_SERVICE_API_TOKENS.") if not tokens else ""
        raise Unauthorized("This endpoint needs the write token: send it as `Authorization: Bearer <token>`." + off,
                           challenge=CHALLENGE)
    if not tokens:
        raise Forbidden("Writes are disabled on this server: set SEARCH_SERVICE_API_TOKENS=<token> "
                        "(or api_tokens in config.toml) and restart to enable them.")
    if not matches_any(supplied, tokens):
        raise Unauthorized("The bearer token is not valid for this server.",
                           challenge=CHALLENGE + ', error="invalid_token", '
                           'error_description="not a token of this server"')
