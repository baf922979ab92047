"""The write API: PUT/DELETE /api/documents/<id>, POST /api/documents (batch), behind bearer tokens.

Each request is validated with the same rules as the CLI ingest, queued to the
server's single writer thread, and answered once the change is committed and
visible to searches.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.routing import PathConverter

from ..article import id_problem
from ..errors import InvalidParameter, PayloadTooLarge, UnsupportedMediaType
from ..ingest import Ingest, JsonProblem, decode_json
from . import writer_of
from .auth import require_token

blueprint = Blueprint("writes", __name__)


class DocumentIdConverter(PathConverter):
    """The id of a write URL: like ``<path:doc_id>`` (an id may hold slashes), but never ending in
    ``/similar``: ``/api/documents/<id>/similar`` is the read-only list of related articles, so a
    PUT or DELETE there is 405 with ``Allow: GET, HEAD, OPTIONS`` (decided by routing, before any
    credentials are looked at), not a write of an id ending in "/similar" that no GET could read."""

    regex = r"[^/].*?(?<!/similar)"


# Before the routes below: a rule is compiled with the converters known when it is added.
blueprint.record_once(lambda state: state.app.url_map.converters.__setitem__("doc_id", DocumentIdConverter))

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/x-jsonlines"})


def _body_bytes() -> bytes:
    settings = current_app.config["SETTINGS"]
    limit = settings.write_body_max_mb * 1024 * 1024
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The body is {request.content_length} bytes; the limit is {limit} bytes "
                              "(setting write_body_max_mb). Split the batch.")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"The body is over {limit} bytes (setting write_body_max_mb). Split the batch.")
    return data


def _decode_json(data: bytes, where: str = "The body"):
    try:
        return decode_json(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidParameter(f"{where} is not UTF-8 text (byte {exc.start + 1}); send UTF-8.",
                               param="body") from None
    except JsonProblem as exc:
        raise InvalidParameter(f"{where} is not valid JSON: {exc}.", param="body") from None


def _check_id(doc_id: str) -> None:
    """The URL's id must be storable exactly as sent (400 naming the rule otherwise)."""
    problem = id_problem(doc_id, current_app.config["SETTINGS"].max_id_length)
    if problem:
        raise InvalidParameter(f"The id in the URL cannot be stored: {problem}.", param="id")


def _records() -> list:
    """The records of a batch body: a JSON array, or NDJSON (one object per line)."""
    mimetype = request.mimetype
    data = _body_bytes()
    if mimetype in JSON_TYPES:
        records = _decode_json(data)
        if not isinstance(records, list):
            raise InvalidParameter("A JSON batch must be an array of article objects.", param="body")
        return records
    if mimetype in NDJSON_TYPES:
        records = []
        for number, line in enumerate(data.split(b"\n"), 1):
            if line.strip():
                records.append(_decode_json(line, f"NDJSON line {number}"))
        return records
    raise UnsupportedMediaType(f"Content-Type {mimetype or '(none)'} is not accepted; send application/json "
                               "(an array) or application/x-ndjson (one article per line).")


def _validate(records: list) -> list:
    settings = current_app.config["SETTINGS"]
    ingest = Ingest(settings.default_category, allow_untitled=settings.allow_untitled, log_problems=False,
                    max_id_length=settings.max_id_length, max_article_kb=settings.max_article_kb)
    articles = ingest.validate_records(records)
    if ingest.report.problems:
        problems = [{"index": p.line, "reason": p.reason} for p in ingest.report.problems]
        raise InvalidParameter(
            f"{len(problems)} of {len(records)} records are invalid; nothing was written. Fix them and resend.",
            param="body", details={"problems": problems},
        )
    return articles


@blueprint.put("/api/documents/<doc_id:doc_id>")
def put_document(doc_id: str):
    """Create or replace one article."""
    require_token(current_app.config["SETTINGS"])
    if request.mimetype not in JSON_TYPES:
        raise UnsupportedMediaType(f"Content-Type {request.mimetype or '(none)'} is not accepted; "
                                   "send application/json.")
    _check_id(doc_id)
    record = _decode_json(_body_bytes())
    if not isinstance(record, dict):
        raise InvalidParameter("The body must be one JSON object with title and body.", param="body")
    if "id" in record and record["id"] != doc_id:
        given = repr(record["id"]) if isinstance(record["id"], str) else "not a string"
        raise InvalidParameter(f"The body's id ({given[:300]}) differs from the URL's {doc_id!r}; "
                               "drop it or make them equal.", param="id")
    articles = _validate([{**record, "id": doc_id}])
    result = writer_of(current_app).submit(upserts=articles)
    return jsonify(result.to_json())


@blueprint.delete("/api/documents/<doc_id:doc_id>")
def delete_document(doc_id: str):
    """Delete one article; 404 when there was none."""
    require_token(current_app.config["SETTINGS"])
    result = writer_of(current_app).submit(deletes=[doc_id])
    body = result.to_json()
    return jsonify(body), (200 if result.deleted else 404)


@blueprint.post("/api/documents")
def post_documents():
    """Create or replace a batch (JSON array or NDJSON); all or nothing."""
    settings = current_app.config["SETTINGS"]
    require_token(settings)
    records = _records()
    if len(records) > settings.write_batch_max:
        raise PayloadTooLarge(f"The batch has {len(records)} articles; the limit is {settings.write_batch_max} "
                              "(setting write_batch_max). Split it.", param="body")
    if not records:
        raise InvalidParameter("The batch is empty.", param="body")
    result = writer_of(current_app).submit(upserts=_validate(records))
    return jsonify(result.to_json())
