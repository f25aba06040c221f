"""Hiding what must not leak: secrets in channel URLs, surnames and contact details."""

from __future__ import annotations


def mask_channel(url: str) -> str:
    """A channel URL with passwords and tokens hidden, as apprise prints it."""
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return url.split("://", 1)[0] + "://****"
    return str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]  # apprise is untyped


def first_name(name: str) -> str:
    """The first word of a name, all a requester is told about their volunteer."""
    words = name.split()
    return words[0] if words else name
