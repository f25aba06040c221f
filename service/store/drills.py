"""What drills created, in Redis: the sets of drill needs and drill volunteers, and removing them again."""

from __future__ import annotations

import redis

from service.store.codec import text
from service.store.keys import Keys
from service.store.scripts import Scripts


class DrillStore:
    """Lists the records drills created and removes them, each record in one atomic step."""

    def __init__(self, client: redis.Redis, keys: Keys, scripts: Scripts) -> None:
        self.r = client
        self.keys = keys
        self.scripts = scripts

    def need_ids(self) -> list[str]:
        return sorted(text(x) for x in self.r.smembers(self.keys.drill_needs()))

    def volunteer_ids(self) -> list[str]:
        return sorted(text(x) for x in self.r.smembers(self.keys.drill_volunteers()))

    def remove_need(self, need_id: str, *, now_iso: str, now_epoch: float, reason: str) -> list[str]:
        """Remove a drill need with its offers, timeline, deliveries and indexes; the volunteers it freed.

        Raises Refused(NO_NEED) when it is gone already, Refused(NOT_DRILL) when no drill created it.
        """
        freed = self.scripts.run(
            "remove_need",
            {
                "need_id": need_id,
                "now_iso": now_iso,
                "now_epoch": repr(now_epoch),
                "reason": reason,
                "only_drill": True,
            },
        )
        return [text(v) for v in freed or []]

    def remove_volunteer(self, volunteer_id: str, *, now_iso: str, now_epoch: float, reason: str) -> list[str]:
        """Remove a drill volunteer and their indexes; the needs whose pending offers to them were withdrawn.

        Raises Refused(BUSY, need id) while they hold an accepted offer, Refused(NO_VOLUNTEER) when
        they are gone already, Refused(NOT_DRILL) when no drill created them.
        """
        touched = self.scripts.run(
            "remove_volunteer",
            {
                "volunteer_id": volunteer_id,
                "now_iso": now_iso,
                "now_epoch": repr(now_epoch),
                "reason": reason,
                "only_drill": True,
            },
        )
        return [text(n) for n in touched or []]
