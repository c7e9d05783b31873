"""PostgreSQL 16 binaries bundled in the `pgserver` wheel, used without pgserver's Python code.

pgserver's own start-up, run as root, adds a system user and opens up the permissions of every
parent of the data directory; devstack only borrows the binaries.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from devstack.account import Account, can_traverse


def wheel_bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the pgserver wheel is not installed (pip install pgserver)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def bin_dir(account: Account | None, cache: Path) -> Path:
    """The bin/ directory `account` can execute from.

    If the virtualenv is out of the account's reach (a project under /root, say), copy the
    install tree once into `cache`. The copy keeps the wheel's layout because initdb finds
    its libpq through a relative RUNPATH (`bin/../../../pgserver.libs`).
    """
    source = wheel_bin_dir()
    if can_traverse(source, account):
        return source
    install = source.parent
    package = install.parent
    copy_root = cache / "pgserver-wheel"
    done = copy_root / ".complete"
    if not done.exists():
        shutil.rmtree(copy_root, ignore_errors=True)
        shutil.copytree(install, copy_root / package.name / install.name, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, copy_root / libs.name, symlinks=True)
        for directory in (copy_root, *copy_root.rglob("*")):
            if directory.is_dir():
                directory.chmod(0o755)
        done.touch()
    return copy_root / package.name / install.name / "bin"
