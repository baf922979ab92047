"""The command line: every command has help, ingest errors carry file:line, exit codes mean something."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search_service.cli import COMMANDS, build_parser, main

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture()
def env(tmp_path, monkeypatch, jieba_cache):
    """Run the CLI against a fresh data folder, without the repo's config.toml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEARCH_SERVICE_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("SEARCH_SERVICE_CACHE_DIR", str(jieba_cache))
    monkeypatch.setenv("SEARCH_SERVICE_INDEX_WORKERS", "1")
    return tmp_path


@pytest.mark.parametrize("command", [*COMMANDS, "config"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_parser_lists_every_command():
    helptext = build_parser().format_help()
    for command in COMMANDS:
        assert command in helptext


def test_index_search_stats(env, capsys):
    assert main(["index", "--rebuild", str(FIXTURES / "search" / "articles.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "12 accepted, 0 rejected" in err and "generation g000001" in err
    assert main(["search", "智慧城市", "--category", "智慧城市案例", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 results") and "【智慧城市】" in out
    assert main(["search", "高新区", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] >= 2
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "documents:   12" in out and "智慧城市案例" in out


def test_rejected_records_are_reported_with_file_and_line(env, capsys):
    broken = FIXTURES / "ingest" / "broken.jsonl"
    assert main(["index", "--rebuild", str(broken), str(FIXTURES / "search" / "articles.jsonl")]) == 1
    err = capsys.readouterr().err
    assert f"{broken}:" in err and "rejected" in err
    # good records were still indexed
    assert main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] >= 12


def test_strict_commits_nothing(env, capsys):
    broken = FIXTURES / "ingest" / "broken.jsonl"
    assert main(["index", "--rebuild", "--strict", str(broken)]) == 1
    assert "nothing committed" in capsys.readouterr().err
    assert main(["stats"]) == 2
    assert "index --rebuild" in capsys.readouterr().err


def test_dry_run_writes_nothing(env, capsys):
    assert main(["index", "--dry-run", str(FIXTURES / "search" / "articles.jsonl")]) == 0
    assert "nothing written" in capsys.readouterr().err
    assert not (env / "index").exists()


def found_ids(capsys, query: str) -> list[str]:
    """Ids ``search QUERY --json`` prints (failing the test if the command fails)."""
    capsys.readouterr()
    assert main(["search", query, "--json"]) == 0
    return [hit["id"] for hit in json.loads(capsys.readouterr().out)["hits"]]


def live_state(capsys) -> tuple[str, int]:
    capsys.readouterr()
    assert main(["stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    return stats["generation"], stats["documents"]


def test_delete_and_rollback(env, capsys):
    articles = str(FIXTURES / "search" / "articles.jsonl")
    assert main(["index", "--rebuild", articles]) == 0
    assert main(["index", "--rebuild", articles]) == 0
    assert "a1" in found_ids(capsys, "title:习近平考察高新区")  # the query finds it before the delete
    assert live_state(capsys) == ("g000002", 12)
    assert main(["delete", "a1", "nope"]) == 1  # one id was not there
    err = capsys.readouterr().err
    assert "deleted 1 article(s)" in err and "nope: no such article" in err and "a1: no such" not in err
    assert "a1" not in found_ids(capsys, "title:习近平考察高新区")
    assert live_state(capsys) == ("g000002", 11)
    assert main(["rollback"]) == 0
    assert "g000001 is live again (replacing g000002); 1 change(s)" in capsys.readouterr().err
    # The delete acknowledged in g000002 was carried into g000001: a rollback undoes a build, not a write.
    assert live_state(capsys) == ("g000001", 11)
    assert "a1" not in found_ids(capsys, "title:习近平考察高新区")
    assert "a11" in found_ids(capsys, "title:高新区产业规划")  # g000001 answers: the rest is all there


def test_rebuild_refuses_to_drop_live_articles_and_reindex_keeps_them(env, tmp_path, capsys):
    articles = FIXTURES / "search" / "articles.jsonl"
    assert main(["index", "--rebuild", str(articles)]) == 0
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "cms1", "title": "内容管理系统推送", "body": "接口写入的文章"},
                                ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["index", str(extra)]) == 0  # an article only the live index has
    capsys.readouterr()
    assert main(["index", "--rebuild", str(articles)]) == 2
    err = capsys.readouterr().err
    assert "1 live article(s) are absent" in err and "cms1" in err and "reindex" in err and "--drop-missing" in err
    assert main(["stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["generation"], stats["documents"]) == ("g000001", 13)  # nothing published
    assert main(["reindex"]) == 0
    assert "reindexed 13 live articles into generation g000002" in capsys.readouterr().err
    assert main(["search", "接口写入"]) == 0 and "id cms1" in capsys.readouterr().out
    assert main(["optimize"]) == 0
    assert "nothing to merge" in capsys.readouterr().err  # a fresh build is one segment
    assert main(["index", str(extra)]) == 0
    assert main(["optimize"]) == 0
    assert "merged 2 segments" in capsys.readouterr().err
    assert main(["index", "--rebuild", "--drop-missing", str(articles)]) == 0
    assert "1 live article(s) absent from the files were dropped" in capsys.readouterr().err
    assert main(["search", "接口写入"]) == 0 and "id cms1" not in capsys.readouterr().out


def test_bad_setting_stops_with_a_message(env, monkeypatch, capsys):
    monkeypatch.setenv("SEARCH_SERVICE_PORT", "eighty")
    assert main(["stats"]) == 2
    err = capsys.readouterr().err
    assert "SEARCH_SERVICE_PORT" in err and "eighty" in err


def test_config_shows_effective_values_and_their_sources(env, monkeypatch, capsys):
    config = env / "site.toml"
    config.write_text('port = 9000\nthreads = 4\nadmin_password = "in-the-file"\n', encoding="utf-8")
    monkeypatch.setenv("SEARCH_SERVICE_THREADS", "6")
    monkeypatch.setenv("SEARCH_SERVICE_API_TOKENS", "tok-one,tok-two")
    assert main(["--config", str(config), "--index-dir", "elsewhere", "config"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line and line[0].islower()}
    assert f"Config file: {config} (chosen by --config)" in out
    assert rows["port"].split()[1:] == ["9000", f"{config}:1"]
    assert rows["threads"].split()[1:] == ["6", "env", "SEARCH_SERVICE_THREADS", "(over", f"{config}:2)"]
    assert rows["index_dir"].split()[1:] == [f'"{env / "elsewhere"}"', "--index-dir", "(over", "env",
                                             "SEARCH_SERVICE_INDEX_DIR)"]
    assert rows["bm25_k1"].split()[1:] == ["1.2", "default"]
    assert rows["api_tokens"].split()[1:] == ['["****",', '"****"]', "env", "SEARCH_SERVICE_API_TOKENS"]
    assert "tok-one" not in out and "in-the-file" not in out
    assert "warning: admin_password is written in" in out

    assert main(["--config", str(config), "config", "--json", "port", "api_tokens"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(s["name"], s["value"], s["from"]) for s in data["settings"]] == [
        ("port", 9000, f"{config}:1"), ("api_tokens", ["****", "****"], "env SEARCH_SERVICE_API_TOKENS")]

    assert main(["config", "--defaults"]) == 0
    assert "ENVIRONMENT VARIABLE" in capsys.readouterr().out  # the reference table: type, default, help
    assert main(["config", "prot"]) == 2
    assert "did you mean 'port'?" in capsys.readouterr().err


def test_console_script_runs(env):
    result = subprocess.run([sys.executable, "-m", "search_service.cli", "--help"],
                            capture_output=True, text=True, check=True)
    assert "search-service" in result.stdout


def test_rebuild_refuses_before_building_when_it_would_drop_live_articles(env, tmp_path, capsys):
    """The refusal reads the files' ids (no segmentation): it costs a small part of a build, not a build."""
    from .helpers import write_corpus

    corpus = write_corpus(tmp_path / "corpus.jsonl", 1500)
    started = time.monotonic()
    assert main(["index", "--rebuild", str(corpus)]) == 0
    build_seconds = time.monotonic() - started
    extra = tmp_path / "extra.jsonl"
    extra.write_text('{"id": "cms1", "title": "接口写入", "body": "只在索引里的文章"}\n', encoding="utf-8")
    assert main(["index", str(extra)]) == 0
    capsys.readouterr()
    started = time.monotonic()
    assert main(["index", "--rebuild", str(corpus)]) == 2
    refusal_seconds = time.monotonic() - started
    err = capsys.readouterr().err
    assert "1 live article(s) are absent from the files given (cms1) and would be dropped" in err
    assert "Nothing was built or published" in err and "--drop-missing" in err
    assert refusal_seconds < build_seconds / 3, (refusal_seconds, build_seconds)
    assert live_state(capsys) == ("g000001", 1501)


def test_switching_from_the_samples_to_real_articles(env, capsys):
    """After `make serve` indexed samples/, a rebuild from other files names the samples and the way out."""
    assert main(["index", "--rebuild", str(SAMPLES)]) == 0
    capsys.readouterr()
    articles = str(FIXTURES / "search" / "articles.jsonl")
    assert main(["index", "--rebuild", articles]) == 2
    err = capsys.readouterr().err
    assert "39 live article(s) are absent" in err and "bundled samples" in err and "--drop-missing" in err
    assert "README.md" not in err  # no "skipped" log line in the middle of the error
    assert main(["index", "--rebuild", "--drop-missing", articles]) == 0
    assert "39 live article(s) absent from the files were dropped" in capsys.readouterr().err
    assert live_state(capsys)[1] == 12


def test_output_cut_short_by_its_reader_ends_quietly(env):
    """`search-service … | head`: the reader goes away; each command that prints a lot stops with status 141
    (as SIGPIPE would), without a traceback or an "Exception ignored" line."""
    assert main(["index", "--rebuild", str(FIXTURES / "search" / "articles.jsonl")]) == 0
    commands = [["search", "高新区", "--limit", "50"], ["search", "高新区", "--json"], ["stats"],
                ["words", "--min-count", "1"], ["config"]]
    running = []
    for command in commands:
        read_end, write_end = os.pipe()
        os.close(read_end)  # closed before the command writes anything: every write fails with EPIPE
        running.append((command, subprocess.Popen([sys.executable, "-m", "search_service.cli", *command],
                                                  stdout=write_end, stderr=subprocess.PIPE, text=True)))
        os.close(write_end)
    for command, process in running:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 141, (command, err)
        assert "Traceback" not in err and "BrokenPipe" not in err and "Exception" not in err, (command, err)
