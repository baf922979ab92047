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


def require_token(settings: Settings) -> None:
    """Let a write through only with a valid bearer token.

    Raises :class:`Forbidden` when no token is configured (writes are off) and
    :class:`Unauthorized` when the header is missing, malformed or wrong.
    """
    tokens = api_tokens(settings)
    if not tokens:
        raise Forbidden("Writes are disabled on this server: set SEARCH_SERVICE_API_TOKENS=<token> "
                        "(or api_tokens in config.toml) and restart to enable them.")
    supplied = bearer_secret()
    if supplied is None:
        raise Unauthorized("Send the write token as `Authorization: Bearer <token>`.")
    if not matches_any(supplied, tokens):
        raise Unauthorized("The bearer token is not valid for this server.")
