"""Copy Swagger UI's assets from the installed `swagger-ui-py` wheel (pinned in
requirements-dev.lock) into web/docs/, where the edge serves them for GET /docs.

    python -m tools.vendor_swagger_ui     after changing the pin; commit web/docs/

The files are committed (the docker edge mounts web/ and has no Python packages); a test fails
when they differ from the installed wheel's. No CDN: the page loads everything from the edge.
"""

from __future__ import annotations

import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS_DIR = ROOT / "web" / "docs"
# what the reference page needs from the wheel (its static/ folder), and the licence it ships under
VENDORED = ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE")


def wheel_static_dir() -> pathlib.Path:
    import swagger_ui

    return pathlib.Path(swagger_ui.__file__).resolve().parent / "static"


def vendor(target: pathlib.Path = DOCS_DIR) -> list[pathlib.Path]:
    source = wheel_static_dir()
    target.mkdir(parents=True, exist_ok=True)
    return [pathlib.Path(shutil.copyfile(source / name, target / name)) for name in VENDORED]


if __name__ == "__main__":
    for path in vendor():
        print(path.relative_to(ROOT))
