"""The relevance desk over HTTP: access, CSRF, the admin API's contract, the pages' actions."""

from __future__ import annotations

import io
import json
import re
import time

from search_service.analytics import AnalyticsDB, SearchEvent
from search_service.engine.request import SearchRequest
from search_service.rules import edits, model
from search_service.rules.store import RulesDB, rules_path

from .conftest import TOKEN, basic, bearer, with_desk


def csrf_of(page) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True))
    assert match, "the page has no form token"
    return match.group(1)


def db_of(app) -> RulesDB:
    return RulesDB(rules_path(app.config["SETTINGS"].index_dir))


def record(app, *events: SearchEvent) -> None:
    settings = app.config["SETTINGS"]
    db = AnalyticsDB(settings.analytics_db)
    db.create()
    db.insert(events)


# --------------------------------------------------------------------------- access


def test_the_desk_is_off_without_secrets(sample_settings, tmp_path):
    from search_service.web import close_app, create_app

    app = with_desk(create_app(sample_settings.replace(index_dir=str(tmp_path / "none"), admin_password="",
                                                       api_tokens=())))
    try:
        client = app.test_client()
        page = client.get("/admin/desk")
        assert page.status_code == 403 and "SEARCH_SERVICE_ADMIN_PASSWORD" in page.get_data(as_text=True)
        api = client.get("/api/admin/curations")
        assert api.status_code == 403 and "SEARCH_SERVICE_API_TOKENS" in api.get_json()["error"]["message"]
    finally:
        close_app(app)


def test_wrong_or_missing_credentials(desk_app):
    client = desk_app.test_client()
    page = client.get("/admin/desk/curations", headers=basic(password="wrong"))
    assert page.status_code == 401 and page.headers["WWW-Authenticate"].startswith("Basic")
    api = client.put("/api/admin/curations/园区", json={"pin": ["a"]})
    assert api.status_code == 401 and api.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/api/admin/synonyms", headers=bearer("nope")).status_code == 401
    assert client.get("/api/admin/synonyms", headers=basic()).status_code == 200  # the admin password
    assert client.get("/api/admin/synonyms", headers=bearer()).status_code == 200
    for path in ("/admin/desk", "/api/admin/history"):
        response = client.get(path, headers=bearer())
        assert response.headers["Cache-Control"] == "no-store" and "noindex" in response.headers["X-Robots-Tag"]


def test_forms_need_their_token_and_refuse_other_sites(staff, desk_app):
    db = db_of(desk_app)
    refused = staff.post("/admin/desk/hot", data={"op": "pin", "entry": "园区规划"})
    assert refused.status_code == 400 and db.get("hot", "pins") is None
    token = csrf_of(staff.get("/admin/desk/hot"))
    cross = staff.post("/admin/desk/hot", data={"op": "pin", "entry": "园区规划", "csrf": token},
                       headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403 and db.get("hot", "pins") is None
    other_login = desk_app.test_client()  # the token belongs to the password, not to another credential
    wrong = other_login.post("/admin/desk/hot", data={"op": "pin", "entry": "园区规划", "csrf": token},
                             headers=bearer())
    assert wrong.status_code == 400
    stamp, _, mac = token.partition(".")
    expired = f"{int(stamp) - 13 * 3600}.{mac}"
    assert staff.post("/admin/desk/hot", data={"op": "pin", "entry": "x", "csrf": expired}).status_code == 400
    done = staff.post("/admin/desk/hot", data={"op": "pin", "entry": "园区规划", "csrf": token})
    assert done.status_code == 303 and db.get("hot", "pins") == ["园区规划"]


# --------------------------------------------------------------------------- the admin API


def test_curation_api_contract(desk_app):
    client = desk_app.test_client()
    put = client.put("/api/admin/curations/園區規劃", json={"pin": ["yqgh-2020-0410", "gone-id"],
                                                          "hide": ["yqgh-2022-0628"]}, headers=bearer())
    assert put.status_code == 200
    body = put.get_json()
    assert body["query"] == "园区规划" and body["pin"] == ["yqgh-2020-0410", "gone-id"]
    assert body["missing"] == ["gone-id"] and body["actor"].startswith("令牌 ") and TOKEN not in body["actor"]
    assert client.get("/api/admin/curations/园区规划", headers=bearer()).get_json()["hide"] == ["yqgh-2022-0628"]
    listing = client.get("/api/admin/curations", headers=bearer()).get_json()["curations"]
    assert [c["query"] for c in listing] == ["园区规划"]
    too_many = client.put("/api/admin/curations/园区规划", json={"pin": [f"i{n}" for n in range(21)]},
                          headers=bearer())
    error = too_many.get_json()["error"]
    assert too_many.status_code == 400 and error["param"] == "pin" and "the limit is 20" in error["message"]
    not_json = client.put("/api/admin/curations/园区规划", data="pin=a", headers=bearer(),
                          content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 415
    bad_json = client.put("/api/admin/curations/园区规划", data="{", headers=bearer(),
                          content_type="application/json")
    assert bad_json.status_code == 400 and bad_json.get_json()["error"]["param"] == "body"
    long_query = client.get("/api/admin/curations/" + "园" * 300, headers=bearer())
    assert long_query.status_code == 400 and "MAX_RULE_QUERY_CHARS" in long_query.get_json()["error"]["message"]
    assert client.delete("/api/admin/curations/园区规划", headers=bearer()).status_code == 204
    assert client.get("/api/admin/curations/园区规划", headers=bearer()).status_code == 404
    assert client.delete("/api/admin/curations/园区规划", headers=bearer()).status_code == 404


def test_synonyms_api_replaces_the_desk_groups(desk_app):
    client = desk_app.test_client()
    body = {"groups": [{"kind": "two_way", "terms": ["亩均论英雄", "亩均效益评价"]},
                       {"kind": "one_way", "from": "飞地经济", "to": ["飞地园区", "飞地抱团"]}]}
    saved = client.put("/api/admin/synonyms", json=body, headers=bearer())
    assert saved.status_code == 200
    groups = saved.get_json()["groups"]
    assert [{k: v for k, v in g.items() if k != "id"} for g in groups] == body["groups"]
    assert saved.get_json()["file_groups"]  # the built-in list, read-only
    again = client.put("/api/admin/synonyms", json=body, headers=bearer()).get_json()["groups"]
    assert [g["id"] for g in again] == [g["id"] for g in groups]  # the same groups keep their ids
    bad = client.put("/api/admin/synonyms", json={"groups": [{"kind": "two_way", "terms": ["一"]}]},
                     headers=bearer())
    assert bad.status_code == 400 and bad.get_json()["error"]["param"] == "groups[1].terms"
    assert len(client.get("/api/admin/synonyms", headers=bearer()).get_json()["groups"]) == 2
    # every worker expands with them on its next search
    engine = desk_app.extensions["search_engine"]
    assert engine.search(SearchRequest(q="飞地经济")).expansions == [
        {"term": "飞地经济", "synonyms": ["飞地园区", "飞地抱团"]}]
    assert engine.search(SearchRequest(q="飞地园区")).expansions == []  # one way only


def test_history_api_and_undo_conflicts(desk_app):
    client = desk_app.test_client()
    client.put("/api/admin/curations/园区", json={"pin": ["a"]}, headers=bearer())
    client.put("/api/admin/curations/园区", json={"pin": ["b"]}, headers=bearer())
    history = client.get("/api/admin/history?limit=5", headers=bearer()).get_json()["history"]
    assert [h["changes"][0]["after"]["pin"] for h in history] == [["b"], ["a"]]
    conflict = client.post(f"/api/admin/history/{history[1]['id']}/undo", headers=bearer())
    assert conflict.status_code == 409 and f"change {history[0]['id']}" in conflict.get_json()["error"]["message"]
    undone = client.post(f"/api/admin/history/{history[0]['id']}/undo", headers=bearer())
    assert undone.status_code == 200 and undone.get_json()["undo_of"] == history[0]["id"]
    assert client.get("/api/admin/curations/园区", headers=bearer()).get_json()["pin"] == ["a"]
    assert client.get("/api/admin/history?limit=0", headers=bearer()).status_code == 400
    assert client.post("/api/admin/history/99999/undo", headers=bearer()).status_code == 404


def test_hot_api_for_the_search_box(desk_app):
    now = time.time()
    record(desk_app, *(SearchEvent("园区规划", "page", 5, ts=now - i) for i in range(4)),
           *(SearchEvent("新质生产力", "widget", 3, ts=now - i) for i in range(3)),
           *(SearchEvent("脚本词", "script", 3, ts=now - i) for i in range(9)))
    client = desk_app.test_client()
    answer = client.get("/api/hot")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "public, max-age=60"
    assert answer.get_json() == {"days": 7, "hot": [
        {"query": "园区规划", "pinned": False, "url": "/search?q=%E5%9B%AD%E5%8C%BA%E8%A7%84%E5%88%92"},
        {"query": "新质生产力", "pinned": False, "url": "/search?q=%E6%96%B0%E8%B4%A8%E7%94%9F%E4%BA%A7%E5%8A%9B"}]}
    db = db_of(desk_app)
    edits.pin_hot(db, "低空经济", "甲")
    edits.block_hot(db, "园区规划", "甲")
    assert [(e["query"], e["pinned"]) for e in client.get("/api/hot").get_json()["hot"]] == [
        ("低空经济", True), ("新质生产力", False)]
    assert client.get("/api/hot?n=3").status_code == 400


def test_a_change_through_one_worker_is_in_effect_in_another(desk_app, desk_settings):
    from search_service.web import close_app, create_app

    other = with_desk(create_app(desk_settings))
    try:
        assert other.test_client().get("/api/hot").get_json()["hot"] == []
        desk_app.test_client().put("/api/admin/curations/园区规划", json={"pin": ["hydj-2019-1210"]},
                                   headers=bearer())
        edits.pin_hot(db_of(desk_app), "园区规划", "甲")
        assert other.test_client().get("/api/hot").get_json()["hot"][0]["query"] == "园区规划"
        hits = other.test_client().get("/api/search?q=园区规划").get_json()["hits"]
        assert hits[0]["id"] == "hydj-2019-1210" and hits[0]["pinned"] is True
    finally:
        close_app(other)


# --------------------------------------------------------------------------- the pages


def test_the_editor_finds_pins_and_previews(staff, desk_app):
    page = staff.get("/admin/desk/curation?q=园区规划&find=招商")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "hydj-2023-0516" in text  # 园区招商：从“拼政策”到“拼生态”
    done = staff.post("/admin/desk/curation", data={"csrf": csrf_of(page), "q": "园区规划", "op": "pin",
                                                    "id": "hydj-2023-0516", "find": "招商"})
    assert done.status_code == 303 and "find=" in done.headers["Location"]
    assert db_of(desk_app).get("curation", "园区规划") == {"pin": ["hydj-2023-0516"], "hide": []}
    editor = staff.get(done.headers["Location"]).get_data(as_text=True)
    assert "已保存" in editor
    preview = editor[editor.index('class="desk-preview"'):]
    first = re.search(r'<li class="hit is-pinned" data-id="([^"]+)">', preview)
    assert first and first.group(1) == "hydj-2023-0516" and "推荐" in preview[:preview.index("</li>")]
    entry = db_of(desk_app).history(1)[0]
    assert entry.actor == "王编辑（管理密码）" and "置顶 hydj-2023-0516" in entry.summary
    # An article that no longer exists is named as such.
    edits.set_curation(db_of(desk_app), "园区规划", {"pin": ["deleted-long-ago", "hydj-2023-0516"]}, "甲")
    editor = staff.get("/admin/desk/curation?q=园区规划").get_data(as_text=True)
    assert "文章已不存在" in editor and "deleted-long-ago" in editor
    listing = staff.get("/admin/desk/curations").get_data(as_text=True)
    assert "1 篇文章已不存在" in listing
    assert staff.post("/admin/desk/curation", data={"csrf": csrf_of(page), "q": "园区规划", "op": "pin",
                                                    "id": "no-such-article"}).status_code == 400


def test_bulk_edit_shows_the_bound_on_the_page(staff, desk_app):
    token = csrf_of(staff.get("/admin/desk/curation?q=园区规划"))
    many = "\n".join(f"id-{i}" for i in range(model.MAX_PINNED + 1))
    response = staff.post("/admin/desk/curation", data={"csrf": token, "q": "园区规划", "op": "save",
                                                        "pin_text": many, "hide_text": ""})
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "the limit is 20" in text and "id-20" in text  # kept for fixing
    assert db_of(desk_app).get("curation", "园区规划") is None
    ok = staff.post("/admin/desk/curation", data={"csrf": token, "q": "园区规划", "op": "save",
                                                  "pin_text": "a\nb", "hide_text": "c"})
    assert ok.status_code == 303 and db_of(desk_app).get("curation", "园区规划") == {"pin": ["a", "b"], "hide": ["c"]}
    gone = staff.post("/admin/desk/curation", data={"csrf": token, "q": "园区规划", "op": "delete"})
    assert gone.status_code == 303 and db_of(desk_app).get("curation", "园区规划") is None


def test_synonym_preview_counts_each_member_before_and_after(staff, desk_app):
    from search_service.web.desk import preview_engine

    with desk_app.test_request_context():
        engine = preview_engine()
    alone = {t: engine.count(SearchRequest(q=t, correct=False)).total for t in ("亩均论英雄", "标准地")}
    together = engine.count(SearchRequest(q="(亩均论英雄) OR (标准地)", correct=False)).total
    assert together > max(alone.values())
    page = staff.get("/admin/desk/synonyms?text=" + "亩均论英雄 = 标准地")
    text = page.get_data(as_text=True)
    rows = re.findall(r'<tr><td class="query"><a [^>]*>([^<]+)</a></td>\s*<td class="num">(\d+)</td>'
                      r'<td class="num">(\d+)</td>', text)
    assert rows == [("亩均论英雄", str(alone["亩均论英雄"]), str(together)),
                    ("标准地", str(alone["标准地"]), str(together))]
    saved = staff.post("/admin/desk/synonyms", data={"csrf": csrf_of(page), "op": "add", "text": "亩均论英雄 = 标准地"})
    assert saved.status_code == 303
    key = db_of(desk_app).items("synonym")[0].key
    # Removing it: the preview shows the counts going back.
    removal = staff.get(f"/admin/desk/synonyms?remove={key}").get_data(as_text=True)
    assert re.findall(r'<td class="num">(\d+)</td><td class="num">(\d+)</td>', removal)[0] == (
        str(together), str(alone["亩均论英雄"]))
    staff.post("/admin/desk/synonyms", data={"csrf": csrf_of(page), "op": "remove", "key": key})
    assert db_of(desk_app).items("synonym") == []
    bad = staff.get("/admin/desk/synonyms?text=" + "只有一个")
    assert bad.status_code == 400 and "at least 2 terms" in bad.get_data(as_text=True)


def test_words_page_refreshes_decides_and_shows_jobs(staff, desk_app, jieba_cache):
    record(desk_app, *(SearchEvent("亩均论英雄", "page", 0, ts=time.time() - i) for i in range(3)))
    page = staff.get("/admin/desk/words")
    staff.post("/admin/desk/words", data={"csrf": csrf_of(page), "op": "refresh"})
    text = staff.get("/admin/desk/words").get_data(as_text=True)
    assert 'data-word="亩均论英雄"' in text and "<mark>亩均论英雄</mark>" in text  # a context from the article
    staff.post("/admin/desk/words", data={"csrf": csrf_of(page), "op": "accept", "word": "亩均论英雄"})
    text = staff.get("/admin/desk/words").get_data(as_text=True)
    assert "待重建索引后生效" in text and 'data-word="亩均论英雄"' not in text
    db = db_of(desk_app)
    job = db.start_job("reindex", "王编辑（管理密码）")
    db.update_job(job.id, done=10, total=40)
    running = staff.get("/admin/desk/words").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="3">' in running and "10 / 40（25%）" in running
    assert staff.get(f"/admin/desk/jobs/{job.id}").get_json()["percent"] == 25
    busy = staff.post("/admin/desk/words", data={"csrf": csrf_of(page), "op": "mine"})
    assert busy.status_code == 409


def test_hot_page_settings_and_bounds(staff, desk_app):
    page = staff.get("/admin/desk/hot")
    token = csrf_of(page)
    response = staff.post("/admin/desk/hot", data={"csrf": token, "op": "settings", "length": "99", "days": "7",
                                                   "min_searches": "3"})
    assert response.status_code == 400 and "MAX_HOT_LENGTH" in response.get_data(as_text=True)
    staff.post("/admin/desk/hot", data={"csrf": token, "op": "settings", "length": "5", "days": "30",
                                        "min_searches": "1"})
    assert desk_app.test_client().get("/api/hot").get_json()["days"] == 30


def test_history_page_undo_export_import(staff, desk_app, tmp_path):
    db = db_of(desk_app)
    edits.set_curation(db, "园区", {"pin": ["a"]}, "李编辑")
    page = staff.get("/admin/desk/history")
    text = page.get_data(as_text=True)
    assert "李编辑" in text and "精选结果「园区」" in text
    entry = db.history(1)[0]
    assert staff.post("/admin/desk/history", data={"csrf": csrf_of(page), "op": "undo",
                                                   "id": str(entry.id)}).status_code == 303
    assert db.get("curation", "园区") is None
    again = staff.post("/admin/desk/history", data={"csrf": csrf_of(page), "op": "undo", "id": str(entry.id)})
    assert again.status_code == 409 and "already undone" in again.get_data(as_text=True)
    edits.set_curation(db, "低空经济", {"hide": ["b"]}, "李编辑")
    exported = staff.get("/admin/desk/export")
    assert exported.headers["Content-Disposition"].startswith("attachment")
    document = json.loads(exported.data)
    assert document["curations"] == {"低空经济": {"pin": [], "hide": ["b"]}}
    bad = staff.post("/admin/desk/import", data={"csrf": csrf_of(page), "file": (io.BytesIO(
        b'{"format": "search_service.rules",\n "version": 1,\n "curations": {"x": {"pin": 3}}}'), "mine.json")},
        content_type="multipart/form-data")
    assert bad.status_code == 400 and "mine.json:3:" in bad.get_data(as_text=True)
    document["curations"] = {"园区规划": {"pin": ["a1"], "hide": []}}
    good = staff.post("/admin/desk/import", data={"csrf": csrf_of(page), "file": (io.BytesIO(
        json.dumps(document).encode()), "rules.json")}, content_type="multipart/form-data")
    assert good.status_code == 303 and [i.key for i in db.items("curation")] == ["园区规划"]


def test_the_analytics_page_links_unfound_queries_to_the_desk(staff, desk_app):
    record(desk_app, SearchEvent("找不到的词", "page", 0))
    text = staff.get("/admin/analytics").get_data(as_text=True)
    assert 'href="/admin/desk/curation?q=%E6%89%BE%E4%B8%8D%E5%88%B0%E7%9A%84%E8%AF%8D" data-desk="curation"' in text
    assert 'data-desk="synonyms"' in text and "相关性工作台" in text
    start = staff.get("/admin/desk/synonyms?start=找不到的词").get_data(as_text=True)
    assert 'value="找不到的词 = "' in start


def test_readers_see_the_pins_marked_and_scripts_get_pinned_true(desk_app):
    client = desk_app.test_client()
    client.put("/api/admin/curations/园区规划", json={"pin": ["hydj-2019-1210"], "hide": ["yqgh-2020-0410"]},
               headers=bearer())
    data = client.get("/api/search?q=園區規劃").get_json()
    assert data["hits"][0]["id"] == "hydj-2019-1210" and data["hits"][0]["pinned"] is True
    assert "yqgh-2020-0410" not in [h["id"] for h in data["hits"]]
    page = client.get("/search?q=园区规划").get_data(as_text=True)
    first = page[page.index('<li class="hit'):]
    first = first[:first.index("</li>")]
    assert "hit-pinned" in first and "推荐" in first and "/doc/hydj-2019-1210" in first
    assert page.count("推荐</span>") == 1
    suggest = client.get("/api/suggest?q=园区规划").get_json()["suggestions"]
    assert suggest[0]["pinned"] is True and "yqgh-2020-0410" not in [s["id"] for s in suggest]


def test_the_api_s_etag_moves_with_the_rules(desk_app):
    client = desk_app.test_client()
    first = client.get("/api/search?q=园区规划")
    assert client.get("/api/search?q=园区规划", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    client.put("/api/admin/curations/园区规划", json={"pin": ["hydj-2019-1210"]}, headers=bearer())
    after = client.get("/api/search?q=园区规划", headers={"If-None-Match": first.headers["ETag"]})
    assert after.status_code == 200 and after.get_json()["hits"][0]["pinned"] is True



def test_a_damaged_analytics_file_leaves_the_hot_list_to_its_pins(staff, desk_app):
    from pathlib import Path

    Path(desk_app.config["SETTINGS"].analytics_db).write_bytes(b"not a database" * 200)
    edits.pin_hot(db_of(desk_app), "园区规划", "甲")
    assert staff.get("/admin/desk/hot").status_code == 200
    assert desk_app.test_client().get("/api/hot").get_json()["hot"] == [
        {"query": "园区规划", "pinned": True, "url": "/search?q=%E5%9B%AD%E5%8C%BA%E8%A7%84%E5%88%92"}]
