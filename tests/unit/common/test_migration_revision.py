"""`python -m common.migrations revision SERVICE -m …` adds an empty migration at the head of that
service's tree only (run here on a copy of migrations/, never the real one)."""

from __future__ import annotations

import importlib.util
import shutil

import pytest
from alembic.script import ScriptDirectory

from common import migrations
from common.settings import SCHEMAS, load_settings


def test_a_new_revision_follows_the_head_of_its_own_tree(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrations, "MIGRATIONS", copy)
    before = {schema: sorted(p.name for p in (copy / schema / "versions").glob("*.py")) for schema in SCHEMAS.values()}

    settings = load_settings({})
    head = ScriptDirectory.from_config(migrations.alembic_config("payment", settings.database_url)).get_current_head()
    path = migrations.revision(settings, "payment", "add refunds")

    assert path.parent == copy / "payment" / "versions"
    spec = importlib.util.spec_from_file_location("new_revision", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert head is not None and head.startswith("payment_")
    assert module.down_revision == head and module.__doc__.startswith("add refunds")
    after = {schema: sorted(p.name for p in (copy / schema / "versions").glob("*.py")) for schema in SCHEMAS.values()}
    assert {s: v for s, v in after.items() if s != "payment"} == {s: v for s, v in before.items() if s != "payment"}
    assert len(after["payment"]) == len(before["payment"]) + 1
