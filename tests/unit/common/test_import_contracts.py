"""`make lint`'s import-linter contracts catch what they promise: a service importing another, a
domain package importing SQL, the plumbing importing a service. Each case runs `lint-imports` on a
temporary copy of the tree with one module added; the real tree is never touched."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
LINT_IMPORTS = pathlib.Path(sys.executable).parent / "lint-imports"
PACKAGES = ("cart_svc", "order_svc", "payment_svc", "enrollment_svc", "common", "edge", "devstack",
            "gateway_emulator", "tools")
PROBE = "lint_probe"
CONTRACTS = [contract["name"] for contract in
             tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]]

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The packages import-linter reads, gen/ and pyproject.toml, copied."""
    copy = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=ignore)
    shutil.copytree(ROOT / "gen", copy / "gen", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def lint_imports(tree: pathlib.Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, ahead of the editable install of the real tree.
    env = {"PATH": str(LINT_IMPORTS.parent), "PYTHONPATH": f"{tree}:{tree / 'gen'}", "HOME": str(tree),
           "COLUMNS": "400"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=90)


def with_probe(tree: pathlib.Path, package: str, source: str) -> pathlib.Path:
    """`tree` with `<package>/lint_probe.py` holding `source` (the package made if it is missing)."""
    directory = tree / package.replace(".", "/")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "__init__.py").touch()
    probe = directory / f"{PROBE}.py"
    probe.write_text(source)
    return probe


def test_the_copy_reads_the_probe_not_the_installed_tree(tree: pathlib.Path) -> None:
    clean = lint_imports(tree)
    assert PROBE not in clean.stdout + clean.stderr
    assert "Contracts:" in clean.stdout, clean.stdout + clean.stderr


@pytest.mark.parametrize(("package", "source", "contract", "chain"), [
    ("payment_svc", "import order_svc\n", "Services are independent", f"payment_svc.{PROBE} -> order_svc"),
    ("order_svc", "from cart_svc import app\n", "Services are independent", f"order_svc.{PROBE} -> cart_svc"),
    ("enrollment_svc", "import payment_svc\n", "Services are independent", f"enrollment_svc.{PROBE} -> payment_svc"),
    ("cart_svc.domain", "import sqlalchemy\n", "Domain code is pure", f"cart_svc.domain.{PROBE} -> sqlalchemy"),
    ("order_svc.domain", "from checkout.v1 import order_pb2\n", "Domain code is pure",
     f"order_svc.domain.{PROBE} -> checkout"),
    ("common", "import enrollment_svc\n", "know no service", f"common.{PROBE} -> enrollment_svc"),
])
def test_a_forbidden_import_breaks_make_lint(tree: pathlib.Path, package: str, source: str, contract: str,
                                             chain: str) -> None:
    probe = with_probe(tree, package, source)
    try:
        broken = lint_imports(tree)
    finally:
        probe.unlink()
    output = broken.stdout + broken.stderr
    assert broken.returncode == 1, output
    assert chain in output, output
    [name] = [name for name in CONTRACTS if contract in name]
    assert f"{name} BROKEN" in " ".join(output.split()), output
