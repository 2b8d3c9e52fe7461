"""web/ is found from a checkout and from an installed wheel, where it travels inside the
package (pyproject's force-include)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from sseserver.app import web_root

ROOT = Path(__file__).resolve().parent.parent


def test_web_root_from_the_checkout() -> None:
    assert web_root() == ROOT / "web"


def test_web_root_from_a_built_wheel(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "dist"), str(ROOT)],
        check=True, capture_output=True, timeout=120,
    )
    (wheel,) = (tmp_path / "dist").glob("sseserver-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sseserver/web/templates/index.html" in names
    assert "sseserver/web/static/app.js" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # Run from the unpacked wheel only, away from the checkout.
    probe = (
        "import sseserver, sseserver.app as a; "
        "print(sseserver.__file__); print(a.web_root())"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(site)},
        capture_output=True, text=True, check=True, timeout=60,
    )
    package_file, found = result.stdout.split()
    assert Path(package_file).is_relative_to(site)
    assert Path(found) == site / "sseserver" / "web"
    assert (Path(found) / "templates" / "index.html").is_file()
