"""gen/ is committed; it must be exactly what `make gen` makes from proto/ today."""

from __future__ import annotations

import filecmp
import pathlib

from tools.gen_protos import ROOT, generate


def test_gen_matches_a_fresh_generation(tmp_path: pathlib.Path) -> None:
    generate(tmp_path)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(ROOT / "gen") for p in (ROOT / "gen").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert committed == fresh, "gen/ has other files than a fresh generation: run `make gen`"
    stale = [str(path) for path in fresh if not filecmp.cmp(tmp_path / path, ROOT / "gen" / path, shallow=False)]
    assert not stale, f"stale generated files (run `make gen` and commit): {stale}"
