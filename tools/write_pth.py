"""Put the project root and gen/ on the virtualenv's sys.path (a .pth file), so `python -m cart_svc`,
pytest and alembic work from any directory without installing the project."""

from __future__ import annotations

import pathlib
import site

ROOT = pathlib.Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    target = pathlib.Path(site.getsitepackages()[0]) / "checkout-project.pth"
    target.write_text(f"{ROOT}\n{ROOT / 'gen'}\n")
