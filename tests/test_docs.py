"""docs/ARCHITECTURE.md stays true to the code: every module listed, every stated constant right."""

from __future__ import annotations

import importlib
import re

import pytest

from .helpers import REPO

ARCHITECTURE = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
PACKAGE = REPO / "search_service"


def test_every_module_of_the_package_is_in_the_module_table():
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", ARCHITECTURE, re.M))
    modules = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")}
    assert modules - listed == set(), "modules missing from docs/ARCHITECTURE.md"
    assert listed - modules == set(), "docs/ARCHITECTURE.md lists modules that do not exist"


CONSTANTS = re.findall(r"^\| `(search_service\.[\w.]+)` \| ([\d.]+) \|", ARCHITECTURE, re.M)


def test_the_constants_table_is_there():
    assert len(CONSTANTS) >= 10


@pytest.mark.parametrize(("dotted", "stated"), CONSTANTS)
def test_each_constant_the_docs_state_is_the_codes(dotted, stated):
    module_name, _, name = dotted.rpartition(".")
    owner = None
    while module_name:
        try:
            owner = importlib.import_module(module_name)
            break
        except ModuleNotFoundError:  # a class attribute: module.Class.NAME
            module_name, _, cls = module_name.rpartition(".")
            name = f"{cls}.{name}"
    value = owner
    for part in name.split("."):
        value = getattr(value, part)
    assert float(value) == float(stated), dotted
