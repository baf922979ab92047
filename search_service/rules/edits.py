"""Staff changes as the desk, the admin API and ``rules import`` make them: validated (:mod:`.model`),
written in one transaction each with its history entry (:class:`RulesDB.change`), summarized in
Chinese for the history page.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from . import model
from .store import HistoryEntry, RulesDB


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------------- curations


def set_curation(db: RulesDB, query: str, value: Any, actor: str, max_id_chars: int = model.MAX_RULE_ID_CHARS,
                 summary: str | None = None) -> tuple[str, dict, HistoryEntry | None]:
    """Validate and save the curation of ``query``; (the rule's key, its value, the history entry or None)."""
    key = model.rule_query(query)
    rule = model.curation(value, max_id_chars)
    text = summary or f"精选结果「{_short(key)}」：置顶 {len(rule['pin'])} 篇，隐藏 {len(rule['hide'])} 篇"
    return key, rule, db.change(actor, text, [("curation", key, rule)])


def delete_curation(db: RulesDB, query: str, actor: str) -> HistoryEntry | None:
    key = model.rule_query(query)
    return db.change(actor, f"删除精选结果「{_short(key)}」", [("curation", key, None)])


def edit_curation(db: RulesDB, query: str, actor: str, *, pin: str | None = None, hide: str | None = None,
                  unpin: str | None = None, unhide: str | None = None, up: str | None = None,
                  down: str | None = None, max_id_chars: int = model.MAX_RULE_ID_CHARS) -> HistoryEntry | None:
    """One step of the desk's editor on the saved rule (pin, hide, remove, move up or down one id)."""
    key = model.rule_query(query)
    current = db.get("curation", key) or {"pin": [], "hide": []}
    pins, hides = list(current["pin"]), list(current["hide"])
    if pin is not None:
        hides = [i for i in hides if i != pin]
        if pin not in pins:
            pins.append(pin)
        what = f"置顶 {pin}"
    elif hide is not None:
        pins = [i for i in pins if i != hide]
        if hide not in hides:
            hides.append(hide)
        what = f"隐藏 {hide}"
    elif unpin is not None:
        pins = [i for i in pins if i != unpin]
        what = f"取消置顶 {unpin}"
    elif unhide is not None:
        hides = [i for i in hides if i != unhide]
        what = f"取消隐藏 {unhide}"
    elif up is not None or down is not None:
        moved = up if up is not None else down
        if moved not in pins:
            return None
        index = pins.index(moved)
        target = index - 1 if up is not None else index + 1
        if not 0 <= target < len(pins):
            return None
        pins[index], pins[target] = pins[target], pins[index]
        what = f"{moved} {'上移' if up is not None else '下移'}到第 {target + 1} 位"
    else:
        return None
    summary = f"精选结果「{_short(key)}」：{_short(what, 60)}"
    if not pins and not hides:
        return db.change(actor, summary, [("curation", key, None)])
    rule = model.curation({"pin": pins, "hide": hides}, max_id_chars)
    return db.change(actor, summary, [("curation", key, rule)])


# --------------------------------------------------------------------------- synonyms


def new_group_key() -> str:
    return secrets.token_hex(4)


def synonym_changes(db: RulesDB, groups: Sequence[dict]) -> list[tuple[str, str, Any]]:
    """The changes that make the desk's groups exactly ``groups`` (validated): groups already there keep
    their keys, new ones get new keys, the others go."""
    existing = {model.group_identity(item.value): item for item in db.items("synonym")}
    wanted = {model.group_identity(g): g for g in groups}
    changes: list[tuple[str, str, Any]] = []
    for identity, item in existing.items():
        if identity not in wanted:
            changes.append(("synonym", item.key, None))
        elif wanted[identity] != item.value:
            changes.append(("synonym", item.key, wanted[identity]))  # same group, terms spelled differently
    for identity, group in wanted.items():
        if identity not in existing:
            changes.append(("synonym", new_group_key(), group))
    return changes


def replace_synonyms(db: RulesDB, body: Any, actor: str) -> HistoryEntry | None:
    groups = model.synonym_groups(body)
    changes = synonym_changes(db, groups)
    return db.change(actor, f"替换全部同义词组（共 {len(groups)} 组，{len(changes)} 处变化）", changes)


def _duplicate_of(db: RulesDB, group: dict, except_key: str | None = None) -> str | None:
    identity = model.group_identity(group)
    for item in db.items("synonym"):
        if item.key != except_key and model.group_identity(item.value) == identity:
            return item.key
    return None


def add_group(db: RulesDB, group: dict, actor: str) -> tuple[str, HistoryEntry | None]:
    existing = _duplicate_of(db, group)
    if existing is not None:
        raise model.InvalidParameter(f"The group {model.group_text(group)!r} exists already.", param="group")
    key = new_group_key()
    return key, db.change(actor, f"添加同义词组：{_short(model.group_text(group), 60)}", [("synonym", key, group)])


def update_group(db: RulesDB, key: str, group: dict, actor: str) -> HistoryEntry | None:
    before = db.get("synonym", key)
    if before is None:
        raise model.InvalidParameter(f"No synonym group {key!r} (removed meanwhile?).", param="group")
    if _duplicate_of(db, group, except_key=key) is not None:
        raise model.InvalidParameter(f"The group {model.group_text(group)!r} exists already.", param="group")
    return db.change(actor, f"修改同义词组：{_short(model.group_text(before), 40)} → "
                            f"{_short(model.group_text(group), 40)}", [("synonym", key, group)])


def remove_group(db: RulesDB, key: str, actor: str) -> HistoryEntry | None:
    before = db.get("synonym", key)
    if before is None:
        return None
    return db.change(actor, f"删除同义词组：{_short(model.group_text(before), 60)}", [("synonym", key, None)])


# --------------------------------------------------------------------------- hot searches


def hot_pins(db: RulesDB) -> list[str]:
    return list(db.get("hot", "pins") or [])


def set_hot_settings(db: RulesDB, value: Any, actor: str) -> HistoryEntry | None:
    settings = model.hot_settings(value)
    return db.change(actor, f"热门搜索设置：显示 {settings['length']} 条，统计近 {settings['days']} 天，"
                            f"至少 {settings['min_searches']} 次", [("hot", "settings", settings)])


def pin_hot(db: RulesDB, entry: str, actor: str) -> HistoryEntry | None:
    key = model.hot_entry(entry)
    pins = hot_pins(db)
    if key in pins:
        return None
    pins = model.hot_pins([*pins, key])
    changes: list[tuple[str, str, Any]] = [("hot", "pins", pins), ("hot", f"block:{key}", None)]
    return db.change(actor, f"热门搜索：置顶「{_short(key)}」", changes)


def unpin_hot(db: RulesDB, entry: str, actor: str) -> HistoryEntry | None:
    key = model.hot_entry(entry)
    pins = [p for p in hot_pins(db) if p != key]
    return db.change(actor, f"热门搜索：取消置顶「{_short(key)}」", [("hot", "pins", pins or None)])


def move_hot(db: RulesDB, entry: str, step: int, actor: str) -> HistoryEntry | None:
    key = model.hot_entry(entry)
    pins = hot_pins(db)
    if key not in pins:
        return None
    index = pins.index(key)
    target = index + step
    if not 0 <= target < len(pins):
        return None
    pins[index], pins[target] = pins[target], pins[index]
    return db.change(actor, f"热门搜索：「{_short(key)}」移到第 {target + 1} 位", [("hot", "pins", pins)])


def block_hot(db: RulesDB, entry: str, actor: str) -> HistoryEntry | None:
    key = model.hot_entry(entry)
    pins = [p for p in hot_pins(db) if p != key]
    changes: list[tuple[str, str, Any]] = [("hot", f"block:{key}", True), ("hot", "pins", pins or None)]
    return db.change(actor, f"热门搜索：屏蔽「{_short(key)}」", changes)


def unblock_hot(db: RulesDB, entry: str, actor: str) -> HistoryEntry | None:
    key = model.hot_entry(entry)
    return db.change(actor, f"热门搜索：取消屏蔽「{_short(key)}」", [("hot", f"block:{key}", None)])


# --------------------------------------------------------------------------- words


def decide_word(db: RulesDB, word: str, status: str, actor: str) -> HistoryEntry | None:
    text = model.word(word)
    status = model.word_status(status)
    label = {"accepted": "采纳", "rejected": "拒绝", "proposed": "改回待定"}[status]
    return db.change(actor, f"自定义词：{label}「{text}」", [("word", text, None if status == "proposed"
                                                            else {"status": status})])
