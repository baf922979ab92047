"""Fixtures of the relevance desk's tests: a private copy of the sample index (rules live beside the
index, so no test may write them into the session's shared sample index), an app with the desk's
blueprint, staff credentials."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from search_service.config import Settings
from search_service.rules import words
from search_service.rules.store import RulesDB, rules_path

from ..helpers import make_settings

PASSWORD = "desk-pass-工作台"


@pytest.fixture(autouse=True)
def segmenter_forgets_taught_words() -> Iterator[None]:
    """A reindex teaches the process's segmenter the accepted words (jieba is process-global):
    forget them after each test, so a later test in the same worker does not see them known."""
    yield
    words.teach_segmenter(())
TOKEN = "desk-token-1"


def basic(user: str = "王编辑", password: str = PASSWORD) -> dict:
    raw = f"{user}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def bearer(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture()
def desk_index(sample_settings, tmp_path) -> Path:
    """A copy of the sample index (generations included) that this test alone writes rules into."""
    target = tmp_path / "index"
    shutil.copytree(sample_settings.index_dir, target, ignore=shutil.ignore_patterns("*.sqlite3*", "*.lock"))
    return target


@pytest.fixture()
def desk_settings(desk_index, jieba_cache) -> Settings:
    return make_settings(desk_index, jieba_cache, admin_password=PASSWORD, api_tokens=(TOKEN,),
                         analytics_db=str(desk_index / "analytics.sqlite3"))


@pytest.fixture()
def desk_db(desk_settings) -> RulesDB:
    return RulesDB(rules_path(desk_settings.index_dir)).create()


def with_desk(app):
    """``app`` with the desk's blueprint (once ``create_app`` registers it, as it is)."""
    from search_service.web import desk

    if "desk" not in app.blueprints:
        app.register_blueprint(desk.blueprint)
    return app


@pytest.fixture()
def desk_app(desk_settings) -> Iterator:
    from search_service.web import close_app, create_app

    app = with_desk(create_app(desk_settings))
    app.config["TESTING"] = True
    try:
        yield app
    finally:
        close_app(app)
        preview = app.extensions.get("desk_preview_engine")
        if preview is not None:
            preview.close()


@pytest.fixture()
def staff(desk_app):
    """A test client that sends the staff's basic-auth credentials with every request."""
    client = desk_app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = basic()["Authorization"]
    return client
