"""A script run by path puts its own folder first on sys.path, where a file named like a standard
module (tools/token.py once did, as `token`) replaces it for every import: `make demo` then died in
`import logging`. No such name in the folders we run scripts from."""

from __future__ import annotations

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCRIPT_FOLDERS = ("tools", "bench")


@pytest.mark.parametrize("folder", SCRIPT_FOLDERS)
def test_no_module_shadows_the_standard_library(folder: str) -> None:
    names = {path.stem for path in (ROOT / folder).glob("*.py")}
    assert names, f"{folder}/ has no modules: the test would check nothing"
    assert not names & sys.stdlib_module_names, f"{folder}/ shadows {sorted(names & sys.stdlib_module_names)}"
