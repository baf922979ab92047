"""Tests for search_service.config: layering, paths, validation and the checked-in file."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path

import pytest

from search_service.config import (
    CONFIG_ENV_VAR,
    RESERVED_ENV_VARS,
    SETTINGS,
    SETTINGS_BY_NAME,
    Settings,
    default_settings,
    load_settings,
    render_config_toml,
    settings_help,
)
from search_service.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    """Write a UTF-8 file and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """An empty working folder, so no stray ./config.toml is picked up."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def load(cwd: Path, config_path=None, environ=None, overrides=None) -> Settings:
    """load_settings with an empty environment unless one is given."""
    return load_settings(config_path, environ=environ or {}, overrides=overrides, cwd=cwd)


# --------------------------------------------------------------------------- #
# Declarations
# --------------------------------------------------------------------------- #


def test_settings_class_has_one_field_per_declared_setting() -> None:
    names = [f.name for f in dataclasses.fields(Settings) if f.name != "config_path"]
    assert names == [s.name for s in SETTINGS]


def test_defaults_match_declarations(cwd: Path) -> None:
    settings = load(cwd)
    assert settings.config_path is None
    assert settings.port == 8080 and settings.threads == 8 and settings.host == "127.0.0.1"
    assert settings.default_category == "高新院新闻"
    assert settings.allow_untitled is False
    assert settings.reload_interval == 2.0 and isinstance(settings.reload_interval, float)
    assert settings.cors_origins == ()
    assert settings.log_level == "INFO"
    # Relative defaults resolve against cwd; empty paths stay empty (= built-in).
    assert settings.index_dir == str(cwd / "index")
    assert settings.cache_dir == str(cwd / "index" / ".cache")
    assert settings.user_dict == "" and settings.synonyms_file == ""
    assert settings == default_settings(cwd=cwd)


def test_settings_is_immutable(cwd: Path) -> None:
    settings = load(cwd)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_as_dict_lists_every_setting_json_ready(cwd: Path) -> None:
    data = load(cwd, environ={"SEARCH_SERVICE_CORS_ORIGINS": "https://a.example"}).as_dict()
    assert list(data) == [s.name for s in SETTINGS]
    assert data["cors_origins"] == ["https://a.example"]
    assert "config_path" not in data


# --------------------------------------------------------------------------- #
# Precedence
# --------------------------------------------------------------------------- #


def test_precedence_default_file_env_override(cwd: Path) -> None:
    write(cwd / "config.toml", "port = 1001\nthreads = 2\nhost = '0.0.0.0'\nsnippet_length = 50\n")
    environ = {"SEARCH_SERVICE_PORT": "1002", "SEARCH_SERVICE_THREADS": "3"}
    settings = load(cwd, environ=environ, overrides={"port": 1003, "threads": None})
    assert settings.port == 1003  # override beats env, file and default
    assert settings.threads == 3  # env beats file; a None override is ignored
    assert settings.host == "0.0.0.0"  # file beats default
    assert settings.snippet_length == 50
    assert settings.max_page_size == 100  # default
    assert settings.config_path == (cwd / "config.toml").resolve()


def test_file_layer_alone(cwd: Path) -> None:
    write(cwd / "config.toml", "port = 1001\n")
    assert load(cwd).port == 1001


def test_env_layer_alone(cwd: Path) -> None:
    assert load(cwd, environ={"SEARCH_SERVICE_PORT": " 1002 "}).port == 1002


def test_override_layer_alone_accepts_typed_and_string_values(cwd: Path) -> None:
    assert load(cwd, overrides={"port": 1003}).port == 1003
    assert load(cwd, overrides={"port": "1004"}).port == 1004
    assert load(cwd, overrides={"allow_untitled": "yes"}).allow_untitled is True


def test_section_table_is_accepted(cwd: Path) -> None:
    write(cwd / "config.toml", "[search_service]\nport = 1005\n")
    assert load(cwd).port == 1005


def test_same_key_flat_and_in_table_is_an_error(cwd: Path) -> None:
    write(cwd / "config.toml", "port = 1\n[search_service]\nport = 2\n")
    with pytest.raises(ConfigError, match="both at top level"):
        load(cwd)


# --------------------------------------------------------------------------- #
# Choosing the file
# --------------------------------------------------------------------------- #


def test_config_path_beats_env_var_beats_cwd_file(cwd: Path, tmp_path: Path) -> None:
    arg = write(tmp_path / "arg.toml", "port = 2001\n")
    env = write(tmp_path / "env.toml", "port = 2002\n")
    write(cwd / "config.toml", "port = 2003\n")
    environ = {CONFIG_ENV_VAR: str(env)}
    assert load(cwd, config_path=arg, environ=environ).port == 2001
    assert load(cwd, environ=environ).port == 2002
    assert load(cwd).port == 2003


def test_relative_config_path_resolves_against_cwd(cwd: Path) -> None:
    write(cwd / "conf" / "site.toml", "port = 2004\n")
    assert load(cwd, config_path="conf/site.toml").port == 2004
    assert load(cwd, environ={CONFIG_ENV_VAR: "conf/site.toml"}).port == 2004


def test_missing_explicit_file_is_an_error(cwd: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        load(cwd, config_path="nope.toml")
    assert "nope.toml" in info.value.message


def test_missing_file_named_by_env_var_is_an_error(cwd: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(cwd, environ={CONFIG_ENV_VAR: "gone.toml"})
    assert CONFIG_ENV_VAR in info.value.message and "'gone.toml'" in info.value.message


def test_no_file_anywhere_is_fine(cwd: Path) -> None:
    assert load(cwd).config_path is None


# --------------------------------------------------------------------------- #
# Paths
# --------------------------------------------------------------------------- #


def test_relative_paths_in_file_resolve_against_file_folder(cwd: Path, tmp_path: Path) -> None:
    conf = write(
        tmp_path / "etc" / "site.toml",
        'index_dir = "data/idx"\nuser_dict = "../dicts/user.txt"\nsynonyms_file = ""\n',
    )
    settings = load(cwd, config_path=conf)
    assert settings.index_dir == str(tmp_path / "etc" / "data" / "idx")
    assert settings.user_dict == str(tmp_path / "dicts" / "user.txt")  # ".." normalised
    assert settings.synonyms_file == ""  # empty stays empty = built-in
    # Not set in the file: the default still resolves against cwd.
    assert settings.cache_dir == str(cwd / "index" / ".cache")


def test_relative_paths_from_env_and_overrides_resolve_against_cwd(cwd: Path, tmp_path: Path) -> None:
    conf = write(tmp_path / "etc" / "site.toml", 'index_dir = "from-file"\n')
    settings = load(
        cwd,
        config_path=conf,
        environ={"SEARCH_SERVICE_INDEX_DIR": "from-env"},
        overrides={"cache_dir": Path("from-flag")},
    )
    assert settings.index_dir == str(cwd / "from-env")
    assert settings.cache_dir == str(cwd / "from-flag")


def test_absolute_paths_are_kept(cwd: Path, tmp_path: Path) -> None:
    target = tmp_path / "abs" / "idx"
    write(cwd / "config.toml", f"index_dir = {str(target)!r}\n".replace("'", '"'))
    assert load(cwd).index_dir == str(target)


def test_empty_path_from_env_means_built_in(cwd: Path) -> None:
    write(cwd / "config.toml", 'user_dict = "words.txt"\n')
    assert load(cwd, environ={"SEARCH_SERVICE_USER_DICT": ""}).user_dict == ""


# --------------------------------------------------------------------------- #
# Unknown keys
# --------------------------------------------------------------------------- #


def test_unknown_file_key_names_file_and_suggests(cwd: Path) -> None:
    conf = write(cwd / "config.toml", "prot = 80\n")
    with pytest.raises(ConfigError) as info:
        load(cwd)
    message = info.value.message
    assert str(conf.resolve()) in message
    assert "'prot'" in message and "Did you mean 'port'?" in message
    assert info.value.param == "prot"


def test_unknown_key_without_close_match_lists_known_settings(cwd: Path) -> None:
    write(cwd / "config.toml", "zzzzzz = 1\n")
    with pytest.raises(ConfigError, match="Known settings: index_dir, host"):
        load(cwd)


def test_unknown_table_is_an_unknown_key(cwd: Path) -> None:
    write(cwd / "config.toml", "[server]\nport = 80\n")
    with pytest.raises(ConfigError, match="unknown setting 'server'"):
        load(cwd)


def test_unknown_env_var_suggests_closest_env_var(cwd: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(cwd, environ={"SEARCH_SERVICE_THREAD": "4"})
    message = info.value.message
    assert "SEARCH_SERVICE_THREAD" in message
    assert "Did you mean SEARCH_SERVICE_THREADS?" in message


def test_reserved_and_foreign_env_vars_are_ignored(cwd: Path) -> None:
    environ = {name: "x" for name in RESERVED_ENV_VARS if name != CONFIG_ENV_VAR}
    environ["SEARCH_SERVICE_API_TOKENS"] = "secret"
    environ["PATH"] = "/usr/bin"
    environ["OTHER_PORT"] = "1"
    assert load(cwd, environ=environ).port == 8080


def test_unknown_override_is_an_error(cwd: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'threads'"):
        load(cwd, overrides={"thread": 4})


# --------------------------------------------------------------------------- #
# Types, ranges, choices
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("line", "key", "shown"),
    [
        ('port = "8080"', "port", "'8080'"),  # string where an int is expected
        ("port = true", "port", "True"),  # bool is not an int
        ("port = 8080.0", "port", "8080.0"),  # float is not an int
        ("allow_untitled = 1", "allow_untitled", "1"),
        ('allow_untitled = "true"', "allow_untitled", "'true'"),
        ("host = 127", "host", "127"),
        ('cors_origins = "https://a.example"', "cors_origins", "'https://a.example'"),
        ("cors_origins = [1, 2]", "cors_origins", "[1, 2]"),
        ("index_dir = 5", "index_dir", "5"),
        ("title_boost = nan", "title_boost", "nan"),
    ],
)
def test_wrong_type_in_file(cwd: Path, line: str, key: str, shown: str) -> None:
    conf = write(cwd / "config.toml", line + "\n")
    with pytest.raises(ConfigError) as info:
        load(cwd)
    message = info.value.message
    assert str(conf.resolve()) in message
    assert f"{key} = {shown}" in message
    assert "expected" in message and "Fix:" in message
    assert info.value.param == key


def test_quoted_number_in_file_gets_a_quote_hint(cwd: Path) -> None:
    write(cwd / "config.toml", 'port = "8080"\n')
    with pytest.raises(ConfigError, match="without quotes") as info:
        load(cwd)
    assert "`port = 8080`" in info.value.message


def test_int_is_accepted_where_float_is_expected(cwd: Path) -> None:
    write(cwd / "config.toml", "reload_interval = 5\n")
    value = load(cwd).reload_interval
    assert value == 5.0 and isinstance(value, float)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("SEARCH_SERVICE_PORT", "eighty"),
        ("SEARCH_SERVICE_PORT", "80.5"),
        ("SEARCH_SERVICE_PORT", ""),
        ("SEARCH_SERVICE_RELOAD_INTERVAL", "soon"),
        ("SEARCH_SERVICE_RELOAD_INTERVAL", "inf"),
        ("SEARCH_SERVICE_ALLOW_UNTITLED", "maybe"),
    ],
)
def test_wrong_type_in_env(cwd: Path, var: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(cwd, environ={var: value})
    message = info.value.message
    assert f"{var}={value!r}" in message
    assert "expected" in message and "Fix:" in message
    assert info.value.param == var.removeprefix("SEARCH_SERVICE_").lower()


def test_env_bool_error_lists_accepted_words(cwd: Path) -> None:
    with pytest.raises(ConfigError, match="1/0, true/false, yes/no, on/off"):
        load(cwd, environ={"SEARCH_SERVICE_ALLOW_UNTITLED": "maybe"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("TRUE", True), ("Yes", True), (" on ", True),
     ("0", False), ("false", False), ("NO", False), ("off", False)],
)
def test_env_bool_parsing(cwd: Path, text: str, expected: bool) -> None:
    assert load(cwd, environ={"SEARCH_SERVICE_ALLOW_UNTITLED": text}).allow_untitled is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://a.example", ("https://a.example",)),
        (" https://a.example , https://b.example ,", ("https://a.example", "https://b.example")),
        ("", ()),
        (" , ", ()),
    ],
)
def test_env_list_parsing(cwd: Path, text: str, expected: tuple[str, ...]) -> None:
    assert load(cwd, environ={"SEARCH_SERVICE_CORS_ORIGINS": text}).cors_origins == expected


def test_env_float_parsing(cwd: Path) -> None:
    assert load(cwd, environ={"SEARCH_SERVICE_TITLE_BOOST": "1.5"}).title_boost == 1.5


@pytest.mark.parametrize(
    ("name", "bad", "good"),
    [
        ("port", 0, 1),
        ("port", 65536, 65535),
        ("threads", 257, 256),
        ("index_workers", -1, 0),
        ("index_memory_mb", 15, 16),
        ("keep_generations", 0, 1),
        ("reload_interval", 3600.5, 3600.0),
        ("max_result_window", 1000001, 1000000),
        ("cache_entries", -1, 0),
        ("snippet_length", 19, 20),
        ("title_boost", -0.1, 0.0),
        ("suggest_limit", 51, 50),
    ],
)
def test_ranges_are_inclusive_and_enforced(cwd: Path, name: str, bad, good) -> None:
    write(cwd / "config.toml", f"{name} = {good}\n")
    assert getattr(load(cwd), name) == good
    write(cwd / "config.toml", f"{name} = {bad}\n")
    with pytest.raises(ConfigError, match="out of range") as info:
        load(cwd)
    assert f"{name} = {bad!r}" in info.value.message


def test_range_error_from_env_states_the_range(cwd: Path) -> None:
    with pytest.raises(ConfigError, match="from 1 to 65535"):
        load(cwd, environ={"SEARCH_SERVICE_PORT": "70000"})


def test_choices_are_case_insensitive_and_canonical(cwd: Path) -> None:
    assert load(cwd, environ={"SEARCH_SERVICE_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    write(cwd / "config.toml", 'log_level = "warning"\n')
    assert load(cwd).log_level == "WARNING"


def test_value_outside_choices_is_an_error(cwd: Path) -> None:
    write(cwd / "config.toml", 'log_level = "LOUD"\n')
    with pytest.raises(ConfigError) as info:
        load(cwd)
    message = info.value.message
    assert "log_level = 'LOUD'" in message
    assert "'DEBUG', 'INFO', 'WARNING', 'ERROR'" in message


# --------------------------------------------------------------------------- #
# TOML syntax
# --------------------------------------------------------------------------- #


def test_toml_syntax_error_names_file_and_line(cwd: Path) -> None:
    conf = write(cwd / "config.toml", "port = 8080\nhost = 127.0.0.1\n")
    with pytest.raises(ConfigError) as info:
        load(cwd)
    message = info.value.message
    assert str(conf.resolve()) in message
    assert "TOML syntax error" in message and "line 2" in message


def test_bom_is_tolerated(cwd: Path) -> None:
    (cwd / "config.toml").write_bytes("\ufeffport = 9001\n".encode("utf-8"))
    assert load(cwd).port == 9001


def test_non_utf8_file_is_an_error(cwd: Path) -> None:
    (cwd / "config.toml").write_bytes('default_category = "新闻"\n'.encode("gbk"))
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load(cwd)


# --------------------------------------------------------------------------- #
# replace and direct construction
# --------------------------------------------------------------------------- #


def test_replace_returns_a_validated_copy(cwd: Path) -> None:
    settings = load(cwd)
    changed = settings.replace(port=9000, cors_origins=["https://a.example"], allow_untitled="on")
    assert changed.port == 9000
    assert changed.cors_origins == ("https://a.example",)
    assert changed.allow_untitled is True
    assert settings.port == 8080  # original untouched
    assert changed.config_path == settings.config_path


def test_replace_rejects_bad_values_and_unknown_names(cwd: Path) -> None:
    settings = load(cwd)
    with pytest.raises(ConfigError, match="out of range"):
        settings.replace(port=0)
    with pytest.raises(ConfigError, match="wrong type"):
        settings.replace(threads=True)
    with pytest.raises(ConfigError, match="Did you mean 'port'"):
        settings.replace(portt=1)


def test_replace_resolves_relative_paths(cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(cwd)
    assert load(cwd).replace(index_dir="other").index_dir == str(cwd / "other")


def test_direct_construction_is_validated(cwd: Path) -> None:
    values = {s.name: getattr(load(cwd), s.name) for s in SETTINGS}
    values["port"] = 0
    with pytest.raises(ConfigError, match="out of range"):
        Settings(**values)


# --------------------------------------------------------------------------- #
# Documentation and the checked-in config.toml
# --------------------------------------------------------------------------- #


def test_settings_help_lists_every_setting() -> None:
    text = settings_help()
    for setting in SETTINGS:
        assert setting.name in text and setting.env_var in text
    assert "int 1..65535" in text and "DEBUG|INFO|WARNING|ERROR" in text


def test_rendered_config_parses_to_the_defaults() -> None:
    data = tomllib.loads(render_config_toml())
    assert data == {s.name: s.default for s in SETTINGS}


def test_checked_in_config_lists_every_setting_at_its_default(tmp_path: Path) -> None:
    path = REPO_ROOT / "config.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert set(data) == set(SETTINGS_BY_NAME)
    # Loaded from elsewhere: paths still resolve against the repo root.
    loaded = load_settings(path, environ={}, cwd=tmp_path)
    assert loaded.config_path == path.resolve()
    assert loaded.as_dict() == default_settings(cwd=REPO_ROOT).as_dict()


def test_checked_in_config_is_up_to_date() -> None:
    # Help text lives in SETTINGS; the checked-in file must not drift from it.
    # Regenerate with: .venv/bin/python -m search_service.config > config.toml
    assert (REPO_ROOT / "config.toml").read_text(encoding="utf-8") == render_config_toml()


def test_direct_construction_normalises_lists_and_floats(cwd: Path) -> None:
    values = {s.name: getattr(load(cwd), s.name) for s in SETTINGS}
    values.update(cors_origins=["https://a.example"], title_boost=2)
    settings = Settings(**values)
    assert settings.cors_origins == ("https://a.example",)
    assert settings.title_boost == 2.0 and isinstance(settings.title_boost, float)


def test_suggest_limit_is_bounded_by_max_limit(cwd: Path) -> None:
    write(cwd / "config.toml", "suggest_limit = 60\nmax_limit = 100\n")
    assert (load(cwd).suggest_limit, load(cwd).max_limit) == (60, 100)
    write(cwd / "config.toml", "suggest_limit = 60\n")
    with pytest.raises(ConfigError) as info:
        load(cwd)
    assert "suggest_limit = 60 is out of range: at most max_limit = 50" in info.value.message
    assert info.value.param == "suggest_limit"
    with pytest.raises(ConfigError, match="raise max_limit"):
        load(cwd, environ={"SEARCH_SERVICE_MAX_LIMIT": "100"}).replace(max_limit=10)


def test_engine_options_are_settings_with_the_settings_defaults():
    """EngineOptions is derived from the one settings table: same names (or the mapped one), same defaults."""
    import dataclasses

    from search_service.config import SETTINGS_BY_NAME, default_settings
    from search_service.engine.searcher import _SETTING_OF, EngineOptions

    for field in dataclasses.fields(EngineOptions):
        setting = SETTINGS_BY_NAME[_SETTING_OF.get(field.name, field.name)]
        assert field.default == setting.default, field.name
    changed = default_settings().replace(title_boost=5.0, correction_fuzzy_pinyin=True)
    options = EngineOptions.from_settings(changed)
    assert (options.title_boost, options.fuzzy_pinyin) == (5.0, True)


# --------------------------------------------------------------------------- #
# Where each value came from (search-service config)
# --------------------------------------------------------------------------- #


def test_explain_settings_names_the_source_of_every_value(cwd: Path) -> None:
    from search_service.config import explain_settings, render_report

    write(cwd / "config.toml", '# comment\nport = 9000\nthreads = 4\n\n[search_service]\n  "host" = "0.0.0.0"\n')
    report = explain_settings(environ={"SEARCH_SERVICE_THREADS": "6"}, overrides={"index_dir": "data"},
                              flags={"index_dir": "--index-dir"}, cwd=cwd)
    by_name = {entry.setting.name: entry for entry in report.entries}
    assert [e.setting.name for e in report.entries] == [s.name for s in SETTINGS]
    file = str((cwd / "config.toml").resolve())
    assert (report.config_path, report.config_chosen_by) == (Path(file), "./config.toml")
    assert str(by_name["port"].origin) == f"{file}:2" and by_name["port"].value == 9000
    assert str(by_name["host"].origin) == f"{file}:6"  # a key in [search_service], quoted
    assert str(by_name["threads"].origin) == "env SEARCH_SERVICE_THREADS" and by_name["threads"].value == 6
    assert [str(o) for o in by_name["threads"].overridden] == [f"{file}:3"]
    assert str(by_name["index_dir"].origin) == "--index-dir" and by_name["index_dir"].value == str(cwd / "data")
    assert str(by_name["bm25_b"].origin) == "default" and by_name["bm25_b"].overridden == ()
    assert report.settings == load(cwd, environ={"SEARCH_SERVICE_THREADS": "6"}, overrides={"index_dir": "data"})
    text = render_report(report)
    assert re.search(rf"^threads +6 +env SEARCH_SERVICE_THREADS \(over {re.escape(file)}:3\)$", text, re.M)
    assert f"Config file: {file} (chosen by ./config.toml)" in text


def test_explain_settings_masks_secrets_and_passwords_in_urls(cwd: Path) -> None:
    from search_service.config import explain_settings, render_report

    write(cwd / "config.toml", 'admin_password = "hunter2-file"\nrate_limit_storage = "redis://u:pw-in-url@h:6379"\n')
    report = explain_settings(environ={"SEARCH_SERVICE_API_TOKENS": "tok-secret-1,tok-secret-2",
                                       "SEARCH_SERVICE_ADMIN_PASSWORD": "hunter2-env"}, cwd=cwd)
    text = render_report(report)
    shown = text + json.dumps([entry.to_json() for entry in report.entries])
    for secret in ("hunter2-file", "hunter2-env", "tok-secret-1", "tok-secret-2", "pw-in-url"):
        assert secret not in shown
    by_name = {entry.setting.name: entry for entry in report.entries}
    assert by_name["api_tokens"].shown == '["****", "****"]'
    assert by_name["admin_password"].shown == '"****"' and by_name["rate_limit_storage"].shown == '"redis://u:****@h:6379"'
    assert by_name["admin_password"].to_json()["overrides"] == [f"{(cwd / 'config.toml').resolve()}:1"]
    # A secret written in the file is worth a warning, even when the environment overrides it.
    assert "warning: admin_password is written in" in text and "SEARCH_SERVICE_ADMIN_PASSWORD" in text
    assert report.settings.admin_password == "hunter2-env"  # masked for display only


def test_explain_settings_without_a_file(cwd: Path) -> None:
    from search_service.config import explain_settings, render_report

    report = explain_settings(environ={}, cwd=cwd)
    assert report.config_path is None and all(str(e.origin) == "default" for e in report.entries)
    assert "Config file: none" in render_report(report)
