"""docs/CONFIGURATION.md is generated from common/settings.py: it must say what the code reads."""

from __future__ import annotations

import pathlib

from tools.config_docs import render

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_configuration_page_is_generated_from_the_settings_model() -> None:
    committed = (ROOT / "docs" / "CONFIGURATION.md").read_text()
    assert committed == render(), "docs/CONFIGURATION.md is stale: run `make docs` and commit it"
