"""The Chinese wording of the app's error pages: a title, an explanation, the parameter or the
setting that was reached. The English message stays in the JSON API and the log."""

from __future__ import annotations

import dataclasses
import logging
import re

from flask import current_app, request

from ..config import SETTINGS_BY_NAME, Settings
from ..errors import SearchError

log = logging.getLogger(__name__)


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


_STATUS_TITLES = {
    400: "请求参数有误",
    404: "页面不存在",
    405: "不支持的请求方法",
    413: "请求内容过大",
    503: "搜索服务暂时不可用",
    500: "服务器内部错误",
}

_PARAM_HINTS = {
    "q": "搜索词太长，请缩短后再试。",
    "date_from": "日期须写成 年-月-日（例如 2025-09-11），且开始日期不能晚于结束日期。",
    "date_to": "日期须写成 年-月-日（例如 2025-09-11），且开始日期不能晚于结束日期。",
    "sort": "排序方式只能是：相关度（relevance）、最新（date_desc）或最早（date_asc）。",
    "page": "页码须为正整数，且不能超出可翻页的范围；结果太多时请用筛选条件缩小范围。",
    "page_size": "每页条数须为 1 到 {max_page_size} 之间的整数。",
    "category": "分类参数有误。",
    "limit": "条数须为 1 到 {max_limit} 之间的整数。",
}

_PARAM_NAMES = {
    "q": "搜索词", "date_from": "开始日期", "date_to": "结束日期", "sort": "排序方式",
    "page": "页码", "page_size": "每页条数", "category": "分类", "limit": "条数",
}


@dataclasses.dataclass(frozen=True)
class ErrorView:
    title: str
    explanation: str
    detail: str
    param_label: str
    setting: str = ""  # the setting whose limit was reached (named for the site's staff)


#: Chinese for the limits a request can reach; the values come from the settings.
_SETTING_HINTS = {
    "max_query_length": "搜索词最多 {max_query_length} 个字符，请缩短后再试。",
    "max_query_terms": "搜索词最多包含 {max_query_terms} 个词或短语，请减少关键词后再试。",
    "max_suggest_length": "输入建议最多针对 {max_suggest_length} 个字符，请直接搜索。",
    "max_prefix_terms": "以 * 结尾的前缀太短，匹配的词太多，请多写几个字再试。",
    "max_result_window": "只能翻到前 {max_result_window} 条结果；请用筛选条件缩小范围。",
    "max_page_size": "每页条数须为 1 到 {max_page_size} 之间的整数。",
    "max_limit": "条数须为 1 到 {max_limit} 之间的整数。",
}
_SETTING_NAMED = re.compile(r"\(setting `{0,2}(\w+)`{0,2}\)")


def error_view(error: SearchError) -> ErrorView:
    """Chinese wording for an error page; the original message stays as the detail."""
    status = getattr(error, "status", 500) or 500
    param = getattr(error, "param", None)
    title = _STATUS_TITLES.get(status, "出错了")
    explanation = ""
    setting = ""
    if status == 400:
        named = _SETTING_NAMED.search(getattr(error, "message", "") or "")
        setting = named.group(1) if named and named.group(1) in _SETTING_HINTS else ""
        hint = _SETTING_HINTS.get(setting) or _PARAM_HINTS.get(param or "", "请检查链接中的参数后再试。")
        try:
            values = {name: getattr(_settings(), name) for name in _SETTING_HINTS}
        except (RuntimeError, KeyError):
            values = {name: SETTINGS_BY_NAME[name].default for name in _SETTING_HINTS}
        try:
            explanation = hint.format(**values)
        except (KeyError, IndexError):
            explanation = _PARAM_HINTS.get(param or "", "请检查链接中的参数后再试。").format(**values)
    elif status == 404:
        if request.path.startswith("/doc/"):
            title = "未找到该文章"
            explanation = "这篇文章不存在，或已从索引中删除。可以试着搜索它的标题。"
        else:
            explanation = "您访问的页面不存在。请检查网址，或使用页面上方的搜索框查找。"
    elif getattr(error, "code", "") == "server_busy":
        explanation = "同时打开的导出和文章页面太多，请几秒后再试；搜索不受影响。"
    elif getattr(error, "code", "") == "analytics_unavailable":
        explanation = ("统计数据文件暂时无法读取；搜索不受影响。详情见服务器日志和 /healthz，"
                       "文件损坏时服务会把它移到一旁并新建一个。")
    elif status == 503:
        explanation = "搜索索引尚未建立或正在更新，请稍后再试。"
    elif status >= 500:
        explanation = "服务器处理请求时出错，请稍后再试。问题已记录在服务器日志中。"
    if status == 503:
        # The English message names the server's folder and the command that builds the
        # index: that is for the operator's log, not for a visitor's page.
        log.warning("%s (%s %s): %s", getattr(error, "code", "unavailable"), request.method, request.path,
                    getattr(error, "message", ""))
    # Visitors read Chinese: the English message stays in the JSON API and the log.
    return ErrorView(title, explanation, "", _PARAM_NAMES.get(param or "", param or ""), setting)
