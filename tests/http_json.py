"""JSON over real HTTP for the tests that run the server as a subprocess (faults, workers)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request


def get_json(base_url: str, path: str, params: dict, *, timeout: float) -> tuple[int, dict]:
    """GET ``path`` with ``params`` on a new connection; (status, decoded JSON body), errors included."""
    url = base_url + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def send_json(base_url: str, method: str, path: str, payload, *, token: str, timeout: float) -> tuple[int, dict]:
    """``method`` ``path`` with a JSON body and a bearer token; (status, decoded JSON body)."""
    request = urllib.request.Request(base_url + path, method=method,
                                     data=json.dumps(payload, ensure_ascii=False).encode(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
