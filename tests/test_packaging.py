"""The package ships every file it reads: a non-editable install (the Docker image's `pip install .`) has only the
Python modules and what pyproject.toml's package-data names."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_data_file_of_the_service_is_named_in_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped: set[Path] = set()
    for package, patterns in config["tool"]["setuptools"]["package-data"].items():
        folder = ROOT / package.replace(".", "/")
        for pattern in patterns:
            shipped |= {p for p in folder.glob(pattern) if p.is_file()}
    data = {
        p
        for p in (ROOT / "service").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }

    missing = sorted(str(p.relative_to(ROOT)) for p in data - shipped)

    assert data, "the service has data files (templates, scripts, catalogs)"
    assert missing == [], "add them to [tool.setuptools.package-data]"
