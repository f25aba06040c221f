"""Hiding what must not leak: secrets in channel URLs, surnames and contact details."""

from __future__ import annotations

import re


def mask_channel(url: str) -> str:
    """A channel URL with passwords and tokens hidden: as apprise prints it in privacy mode, and with the
    user and password part (where apprise keeps a token's first and last characters) replaced by ****."""
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return channel_kind(url).replace("…", "****")
    return hide_userinfo(str(plugin.url(privacy=True)))  # type: ignore[no-untyped-call]  # apprise is untyped


USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@?#]*@")


def hide_userinfo(url: str) -> str:
    """'twilio://AC...6789:s...n@+1555/...' as 'twilio://****@+1555/...'; a URL without one as it is."""
    return USERINFO.sub(r"\1****@", url)


def channel_kind(url: str) -> str:
    """Only the kind of a channel, 'twilio://…': what those who may not see contact details are shown (a
    channel's address holds a phone number or an e-mail address)."""
    return url.split("://", 1)[0] + "://…"


def channel_as_seen(url: str, *, sees_contacts: bool) -> str:
    """A (masked) channel as this reader may see it: whole but for secrets, or only its kind."""
    return hide_userinfo(url) if sees_contacts else channel_kind(url)


def first_name(name: str) -> str:
    """The first word of a name, all a requester is told about their volunteer."""
    words = name.split()
    return words[0] if words else name
