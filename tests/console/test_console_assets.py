"""The console's files are served by Aidline itself: the vendored libraries at the Makefile's pinned versions,
each with its licence."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
VENDOR = ROOT / "service" / "console" / "static" / "vendor"
FILES = {
    "htmx": ["htmx.min.js", "LICENSE"],
    "alpinejs-csp": ["cdn.min.js", "LICENSE"],
    "leaflet": ["leaflet.js", "leaflet.css", "LICENSE"],
}


def test_each_vendored_library_is_there_with_its_licence_at_the_pinned_version() -> None:
    makefile = (ROOT / "Makefile").read_text()
    pinned = dict(re.findall(r"^(HTMX|ALPINE|LEAFLET)_VERSION := (\S+)$", makefile, re.M))
    for folder, names in FILES.items():
        for name in names:
            assert (VENDOR / folder / name).stat().st_size > 0, f"{folder}/{name}: run make vendor"
    versions = (VENDOR / "VERSIONS").read_text().split()
    assert versions == ["htmx.org", pinned["HTMX"], "@alpinejs/csp", pinned["ALPINE"], "leaflet", pinned["LEAFLET"]]
    assert pinned["HTMX"].startswith("2.") and pinned["ALPINE"].startswith("3.") and pinned["LEAFLET"] == "1.9.4"
    assert f'version:"{pinned["HTMX"]}"' in (VENDOR / "htmx" / "htmx.min.js").read_text()


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/console/static/vendor/htmx/htmx.min.js", "javascript"),
        ("/console/static/vendor/alpinejs-csp/cdn.min.js", "javascript"),
        ("/console/static/vendor/leaflet/leaflet.js", "javascript"),
        ("/console/static/vendor/leaflet/leaflet.css", "text/css"),
        ("/console/static/console/console.js", "javascript"),
        ("/console/static/console/console.css", "text/css"),
    ],
)
def test_the_files_are_served_from_the_package_without_a_session(client: Any, path: str, kind: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert kind in response.headers["Content-Type"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    response.close()


def test_no_page_or_script_names_another_origin() -> None:
    own = [
        *(ROOT / "service" / "console" / "templates").rglob("*.html"),
        ROOT / "service/console/static/console/console.js",
    ]
    for path in own:
        text = path.read_text()
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), path
