"""The CSV export of results (``/search.csv``): every row, streamed in chunks, Chinese headers, the score
only when it means something, the limit said in the file and on the page, the costly-endpoint cap kept
for the whole stream (issue 27: 1,853 results exported as 1,000 rows without a word)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from bs4 import BeautifulSoup

from search_service.web import close_app, costly, create_app, pages

from ..helpers import build_index, make_settings, write_corpus

BOM = "\ufeff"
HEADER = ["排名", "编号", "标题", "分类", "日期", "来源", "原文链接", "相关度", "摘要"]
MANY = 1100  # more rows than the old cap (1,000) and more than one chunk of the engine


@pytest.fixture(scope="module")
def many_app(tmp_path_factory, jieba_cache):
    folder = tmp_path_factory.mktemp("many-articles")
    write_corpus(folder / "many.jsonl", MANY)
    index_dir = tmp_path_factory.mktemp("many-index")
    build_index(index_dir, [folder / "many.jsonl"])
    app = create_app(make_settings(index_dir, jieba_cache, costly_concurrency=1))
    yield app
    close_app(app)


def rows_of(text: str) -> list[list[str]]:
    assert text.startswith(BOM)
    return list(csv.reader(io.StringIO(text[1:])))


def streamed(client, url: str) -> Iterator[bytes]:
    """The chunks of a streamed answer, as the server sends them."""
    response = client.get(url, buffered=False)
    assert response.status_code == 200
    assert response.is_streamed and "Content-Length" not in response.headers
    try:
        yield from response.response
    finally:
        response.close()


def test_every_result_is_exported_past_a_thousand_rows_in_bounded_chunks(many_app):
    client = many_app.test_client()
    api = client.get("/api/search?q=智慧城市&page_size=100&page=11").get_json()
    assert api["total"] == MANY
    chunks = list(streamed(client, "/search.csv?q=智慧城市"))
    rows = rows_of(b"".join(chunks).decode("utf-8"))
    assert rows[0] == HEADER
    body = rows[1:]
    assert len(body) == MANY  # every row, no trailing note: nothing was left out
    assert [int(r[0]) for r in body] == list(range(1, MANY + 1))
    assert len({r[1] for r in body}) == MANY
    # The order is the results' order, across the engine's chunks too (rows 1001-1100 are page 11).
    assert [r[1] for r in body[1000:]] == [h["id"] for h in api["hits"]]
    # Streamed a chunk at a time: no chunk holds more than the engine's chunk of rows (+ the header).
    assert pages.EXPORT_CHUNK < MANY
    sizes = [chunk.count(b"\r\n") for chunk in chunks if chunk]
    assert len(sizes) >= 2 and max(sizes) <= pages.EXPORT_CHUNK + 1


def test_the_costly_turn_is_held_while_the_export_streams(many_app, monkeypatch):
    monkeypatch.setattr(costly, "WAIT_SECONDS", 0.2)
    client = many_app.test_client()
    gate = many_app.extensions[costly.GATE_KEY]
    chunks = streamed(client, "/search.csv?q=智慧城市")
    next(chunks)  # the export has started, its rows are still being written
    busy = client.get("/search.csv?q=智慧城市")
    assert busy.status_code == 503 and busy.headers["Retry-After"]  # costly_concurrency = 1: this is its turn
    assert client.get("/api/search?q=智慧城市").status_code == 200  # searches are not held back
    rest = list(chunks)
    assert rest  # the rest of the rows came after the 503
    assert gate.acquire(timeout=0.5)  # given back once the body was sent
    gate.release()
    # A download abandoned half-way gives the turn back too (the server closes the body).
    response = client.get("/search.csv?q=智慧城市", buffered=False)
    next(iter(response.response))
    response.close()
    assert gate.acquire(timeout=0.5)
    gate.release()
    assert client.get("/search.csv?q=智慧城市").status_code == 200


def test_headers_are_chinese_and_the_score_is_there_only_for_relevance(client):
    api = client.get("/api/search?q=园区&page_size=100").get_json()
    response = client.get("/search.csv?q=园区")
    assert response.headers["X-Total-Count"] == str(api["total"]) == response.headers["X-Export-Rows"]
    rows = rows_of(response.get_data(as_text=True))
    assert rows[0] == HEADER
    table = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert len(table) == api["total"]
    for row, hit in zip(table, api["hits"], strict=True):
        assert (row["编号"], row["标题"], row["分类"], row["日期"], row["来源"], row["原文链接"]) == (
            hit["id"], hit["title"], hit["category"], hit["date"] or "", hit["source"], hit["url"])
        assert float(row["相关度"]) == pytest.approx(hit["score"])
        assert row["排名"] == str(hit["rank"])
    # Ordered by date (or listing without a query) there is no score: no column for it.
    for url in ("/search.csv?q=园区&sort=date_desc", "/search.csv"):
        rows = rows_of(client.get(url).get_data(as_text=True))
        assert rows[0] == [c for c in HEADER if c != "相关度"], url
        dates = [r[4] for r in rows[1:] if r[4]]
        assert dates == sorted(dates, reverse=True)


def test_a_limit_hit_is_said_on_the_page_and_in_the_file(sample_settings):
    app = create_app(sample_settings)
    try:
        client = app.test_client()
        soup = BeautifulSoup(client.get("/search").get_data(as_text=True), "html.parser")
        assert not soup.select(".export-note")  # under the limit: every row, nothing to say
        assert "每次最多 100000 条" in client.get("/help").get_data(as_text=True)
    finally:
        close_app(app)
    app = create_app(sample_settings.replace(csv_max_rows=4))
    try:
        client = app.test_client()
        total = client.get("/api/search").get_json()["total"]
        assert "每次最多 4 条" in client.get("/help").get_data(as_text=True)
        soup = BeautifulSoup(client.get("/search").get_data(as_text=True), "html.parser")
        note = soup.select_one(".export-note")
        assert note.get_text() == f"共 {total} 条，超过导出上限，只导出前 4 条"
        assert soup.select_one("a.export")["aria-describedby"] == note["id"]
        response = client.get("/search.csv")
        assert response.headers["X-Total-Count"] == str(total) and response.headers["X-Export-Rows"] == "4"
        rows = rows_of(response.get_data(as_text=True))
        assert [int(r[0]) for r in rows[1:5]] == [1, 2, 3, 4]
        assert len(rows) == 6  # header, 4 rows, the note
        assert rows[-1] == [f"（共 {total} 条结果，超过导出上限 4 条，只导出了前 4 条。请用分类或日期筛选缩小范围后分批导出。）"]
    finally:
        close_app(app)
