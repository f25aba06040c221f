"""Aidline's Lua scripts: read from the package's lua/ folder, each behind one registered Script.

Each script is run as: the constants generated below, then lua/lib.lua, then the script itself.
The constants come from the Python vocabulary (service.models) and the lifecycle's status sets
(service.lifecycle), so a change there reaches the scripts without retyping anything.
"""

from __future__ import annotations

import json
from enum import Enum
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from service import lifecycle
from service.models import (
    URGENT_PRIORITIES,
    URGENT_VULNERABILITIES,
    EventType,
    Family,
    IncidentStatus,
    NeedStatus,
    OfferStatus,
    Skill,
    VisitStatus,
)
from service.store.errors import Refusal, Refused


def _lua_names(name: str, vocabulary: type[Enum]) -> str:
    pairs = ", ".join(f"{member.value} = '{member.value}'" for member in vocabulary)
    return f"local {name} = {{{pairs}}}"


def _lua_set(name: str, members: frozenset[Any]) -> str:
    return f"local {name} = {{{', '.join(f'{m.value} = true' for m in sorted(members))}}}"


@cache
def constants() -> str:
    """The Lua constants every script starts with."""
    return "\n".join(
        [
            _lua_names("NEED", NeedStatus),
            _lua_names("OFFER", OfferStatus),
            _lua_names("EVENT", EventType),
            _lua_names("INCIDENT", IncidentStatus),
            _lua_names("VISIT", VisitStatus),
            f"local SKILLS = {{{', '.join(repr(s.value) for s in Skill)}}}",
            f"local FAMILIES = {{{', '.join(repr(f.value) for f in Family)}}}",
            _lua_set("MATCHABLE", lifecycle.MATCHABLE),
            _lua_set("ACCEPTS_OFFERS", lifecycle.ACCEPTS_OFFERS),
            _lua_set("IN_PROGRESS", lifecycle.IN_PROGRESS),
            _lua_set("ESCALATES_FROM", lifecycle.ESCALATES_FROM),
            _lua_set("URGENT_PRIORITY", URGENT_PRIORITIES),
            _lua_set("URGENT_VULNERABILITY", URGENT_VULNERABILITIES),
            _lua_set("RESOLVED", lifecycle.RESOLVED),
        ]
    )


@cache
def source(name: str) -> str:
    """The full text Redis runs for lua/<name>.lua."""
    folder = resources.files("service.store") / "lua"
    lib = (folder / "lib.lua").read_text(encoding="utf-8")
    body = (folder / f"{name}.lua").read_text(encoding="utf-8")
    return f"{constants()}\n{lib}\n{body}"


class Scripts:
    """The registered scripts of one Redis client; each call sends the prefix and one JSON argument."""

    NAMES = (
        "save_volunteer",
        "match",
        "assign",
        "accept",
        "release",
        "transition",
        "create_delivery",
        "holders",
        "movable",
        "next_expiry",
        "incident",
        "incident_close",
        "remove_need",
        "remove_volunteer",
        "ladder",
        "care",
    )

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.prefix = prefix
        self._client = client
        self._scripts: dict[str, Script] = {name: client.register_script(source(name)) for name in self.NAMES}

    def run(self, name: str, arguments: dict[str, Any], *, keys: list[str] | None = None, client: Any = None) -> Any:
        """Run a script; returns its detail, or raises Refused naming the refusal."""
        args = [self.prefix, json.dumps(arguments, ensure_ascii=False)]
        if client is None:
            return outcome(self._evalsha(name, keys or [], args))
        return outcome(self._scripts[name](keys=keys or [], args=args, client=client))

    def _evalsha(self, name: str, keys: list[str], args: list[str]) -> Any:
        """EVALSHA on a connection of the client's pool, without the client's per-command wrapping: a match
        is one call, and that wrapping cost about a tenth of it. Anything out of the ordinary (the script not
        loaded yet, a broken connection) goes the client's own way, which loads the script or retries."""
        script = self._scripts[name]
        if self._client.connection is not None:  # a single-connection client: its own way
            return script(keys=keys, args=args)
        pool = self._client.connection_pool
        conn = pool.get_connection()
        reply: Any = _NO_REPLY
        try:
            conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
            reply = conn.read_response()
        except NoScriptError:
            pass
        except (redis.ConnectionError, redis.TimeoutError):
            conn.disconnect()  # type: ignore[no-untyped-call]
        finally:
            pool.release(conn)
        if reply is _NO_REPLY:
            reply = script(keys=keys, args=args)
        return reply

    def queue(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        pipeline: Any,
        keys: list[str] | None = None,
        checked: bool = True,
    ) -> None:
        """Add a script call to a pipeline; read its reply with outcome().

        Checked (the client's own way), the client asks the server whether it holds the pipeline's scripts
        before running it: one more round trip each time. Unchecked, the call goes out as a plain EVALSHA, and
        its reply may say the server lost the script (lost(): e.g. it restarted): nothing of that call was
        done, and the caller runs it again with call() or run(), which load it."""
        keys = keys or []
        args = [self.prefix, json.dumps(arguments, ensure_ascii=False)]
        if checked:
            self._scripts[name](keys=keys, args=args, client=pipeline)
        else:
            pipeline.evalsha(self._scripts[name].sha, len(keys), *keys, *args)

    def call(self, name: str, arguments: dict[str, Any], *, keys: list[str] | None = None) -> Any:
        """Run a script and answer its raw reply (read it with outcome()), the script loaded if need be."""
        return self._evalsha(name, keys or [], [self.prefix, json.dumps(arguments, ensure_ascii=False)])


_NO_REPLY = object()


def lost(reply: Any) -> bool:
    """Whether a queued script call was refused because the server does not hold the script (nothing was done)."""
    return isinstance(reply, NoScriptError)


def outcome(reply: Any) -> Any:
    """The detail of an 'ok' reply, or Refused for any other."""
    code, detail = reply[0], reply[1] if len(reply) > 1 else ""
    code = code.decode() if isinstance(code, bytes) else code
    if isinstance(detail, bytes):
        detail = detail.decode()
    if code == "ok":
        return detail
    raise Refused(Refusal(code), detail or None)
