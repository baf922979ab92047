"""A fresh machine: README's two commands set it up or stop at once saying what to install; never a green
test run that skipped the browser, and skips that depend on the machine said loudly at the end.

The Makefile runs in a copy of the checkout's build files (a temporary folder: no .venv of this checkout is
touched), with a Python that cannot make virtualenvs, or with Chromium "missing" (``CHROMIUM=PATH``) and
not as root (``IS_ROOT=``), or as root with a stand-in apt-get that records what it was asked to install.
The pytest side runs a probe test file with this suite's conftest as a plugin.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import REPO

MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed (README: Without make)")


@pytest.fixture()
def checkout(tmp_path) -> Path:
    """The files make reads, copied: targets that create .venv do it here."""
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def make(checkout: Path, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SEARCH_SERVICE_", "MAKE"))}
    return subprocess.run([MAKE or "make", "--no-print-directory", "-C", str(checkout), *args],
                          env={**environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)


@needs_make
def test_make_serve_without_python3_venv_stops_with_the_package_to_install(checkout, tmp_path):
    # Debian's python3 without python3-venv has no ensurepip: this one neither.
    fake = tmp_path / "no-venv"
    (fake / "ensurepip").mkdir(parents=True)
    (fake / "ensurepip" / "__init__.py").write_text('raise ImportError("ensurepip is not installed")\n')
    done = make(checkout, "serve", f"PYTHON={sys.executable}", env={"PYTHONPATH": str(fake)})
    assert done.returncode != 0
    assert "sudo apt-get install -y python3-venv" in done.stderr, done.stderr
    assert not (checkout / ".venv").exists()  # no half-made virtualenv left behind


@needs_make
def test_make_serve_with_an_old_python_says_which_is_needed(checkout, tmp_path):
    old = tmp_path / "python3"
    old.write_text("#!/bin/sh\n"
                   "case \"$1\" in --version) echo 'Python 3.9.2';; *) exit 1;; esac\n")
    old.chmod(0o755)
    done = make(checkout, "serve", f"PYTHON={old}")
    assert done.returncode != 0
    assert "needs Python 3.11 or newer" in done.stderr and "Python 3.9.2" in done.stderr, done.stderr
    assert not (checkout / ".venv").exists()


@needs_make
def test_make_test_without_chromium_stops_at_once_with_the_command(checkout):
    done = make(checkout, "test", "CHROMIUM=/nonexistent/chromium", "IS_ROOT=", timeout=30)
    assert done.returncode != 0
    assert "sudo apt-get install -y chromium" in done.stderr, done.stderr
    assert not (checkout / ".venv").exists()  # stopped before installing anything, let alone testing


@needs_make
def test_make_test_as_root_installs_what_is_missing(checkout, tmp_path):
    calls = tmp_path / "apt-get-calls"
    apt = tmp_path / "apt-get"
    apt.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')  # installs nothing: Chromium stays missing
    apt.chmod(0o755)
    done = make(checkout, "test-machine", "CHROMIUM=/nonexistent/chromium", "IS_ROOT=yes", f"APT_GET={apt}")
    assert "install -y -qq chromium" in calls.read_text()
    assert "make test: installing chromium" in done.stdout
    # Still missing after the install: the run stops rather than skip the browser tests.
    assert done.returncode != 0 and "sudo apt-get install -y chromium" in done.stderr


PROBE = '''
def test_needs_the_browser(browser):
    pass


def test_needs_shared(shared_dir):
    pass


def test_plain():
    pass
'''


# Plugins the probe does not use (schemathesis alone takes seconds to load).
QUICK = ("-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:schemathesis", "-p", "no:hypothesispytest",
         "-p", "no:anyio")


@pytest.fixture(scope="module")
def probe_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """The probe file under this suite's conftest, with no Chromium and no ../shared: as a developer's
    plain pytest, as `make test` runs it (--require-browser), and under CI=true (three runs at once)."""
    folder = tmp_path_factory.mktemp("probe")
    (folder / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    env["BENCH_SHARED_DIR"] = str(folder / "no-shared")
    runs = {"plain": ((), {}), "make test": (("--require-browser",), {}), "CI": ((), {"CI": "true"})}
    started = {
        name: subprocess.Popen([sys.executable, "-m", "pytest", "-p", "tests.conftest", *QUICK,
                                "--chromium", str(folder / "no-chromium"), *options, str(folder / "test_probe.py")],
                               cwd=REPO, env={**env, **extra}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        for name, (options, extra) in runs.items()
    }
    done = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=120)
        done[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return done


def test_skips_of_this_machine_are_said_loudly_at_the_end(probe_runs):
    done = probe_runs["plain"]
    assert done.returncode == 0, done.stdout + done.stderr
    tail = done.stdout.splitlines()[-4:]
    assert any(line.startswith("! 1 browser test(s) SKIPPED") and "sudo apt-get install -y chromium" in line
               for line in tail), tail
    assert any(line.startswith("! 1 test(s) SKIPPED because ../shared is absent") and "BENCH_SHARED_DIR" in line
               for line in tail), tail


@pytest.mark.parametrize("run", ["make test", "CI"])
def test_without_chromium_make_test_and_ci_fail_rather_than_skip(probe_runs, run):
    done = probe_runs[run]
    assert done.returncode != 0
    assert "ERROR at setup of test_needs_the_browser" in done.stdout, done.stdout
    assert re.search(r"^E +Failed: .* is not installed: sudo apt-get install -y chromium", done.stdout, re.M)
