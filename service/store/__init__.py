"""The Redis store: the only code that knows key names, and the Lua scripts that change state.

One module per concept (needs, volunteers, offers, deliveries, tokens, stats, idempotency, drills, rollups) over
one key builder (keys.py). Every state change that two workers or two requests could race on
is a single Lua script in lua/, so Redis runs it as one atomic step; each script sits behind
one Python method that returns a value or raises Refused naming why. Index sets ordered by id
use score 0 and rely on ids being time-sortable, so a cursor is simply the last id seen.
"""

from __future__ import annotations

import redis

from service.store.backlog import BacklogStore
from service.store.captains import CaptainStore
from service.store.codec import volunteer_fields
from service.store.deliveries import DeliveryStore
from service.store.drills import DrillStore
from service.store.errors import Refusal, Refused
from service.store.households import HouseholdStore, Saved, VisitPlan
from service.store.idempotency import IdempotencyStore
from service.store.incidents import IncidentStore, Placement
from service.store.keys import Keys
from service.store.needs import NeedStore, Release, Transition
from service.store.offers import OfferStore, bucket_label
from service.store.rollups import RollupStore
from service.store.scripts import Scripts
from service.store.stats import StatStore
from service.store.tokens import TokenStore
from service.store.visits import VisitStore
from service.store.volunteers import VolunteerStore

__all__ = [
    "Placement",
    "Refusal",
    "Refused",
    "Release",
    "Saved",
    "Store",
    "Transition",
    "VisitPlan",
    "bucket_label",
    "volunteer_fields",
]


class Store:
    """Aidline's records in one Redis, one attribute per concept (needs, volunteers, offers, ...)."""

    def __init__(self, client: redis.Redis, *, prefix: str = "aidline:", timezone: str = "UTC") -> None:
        self.r = client
        self.keys = Keys(prefix)
        scripts = Scripts(client, prefix)
        self.rollups = RollupStore(client, self.keys, timezone=timezone)
        self.needs = NeedStore(client, self.keys, scripts, self.rollups)
        self.volunteers = VolunteerStore(client, self.keys, scripts)
        self.offers = OfferStore(client, self.keys, scripts)
        self.deliveries = DeliveryStore(client, self.keys, scripts)
        self.tokens = TokenStore(client, self.keys)
        self.stats = StatStore(client, self.keys)
        self.idempotency = IdempotencyStore(client, self.keys)
        self.backlog = BacklogStore(client, self.keys)
        self.incidents = IncidentStore(client, self.keys, scripts)
        self.drills = DrillStore(client, self.keys, scripts)
        self.captains = CaptainStore(client, self.keys, scripts)
        self.households = HouseholdStore(client, self.keys, scripts)
        self.visits = VisitStore(client, self.keys, scripts, self.rollups)

    def ping(self) -> bool:
        return bool(self.r.ping())

    ACTIVITY = (
        "backlog:*",
        "need:*",
        "needs:*",
        "offer:*",
        "offers:*",
        "offercode:*",
        "volunteers:holding_ordinary",
        "track:*",
        "delivery:*",
        "hist:*",
        "stats:*",
        "once:*",
        "idem:*",
        "incident:*",
        "incidents:*",
        "drills:needs",
        "ladder:*",
        "ladders:*",
        "ackcode:*",
        "rollup:*",
    )

    def clear_activity(self) -> int:
        """Forget every need, offer, delivery and counter, keeping the volunteers (back to no load).

        For demos, drills and benchmarks on a private Redis, never on a live one. Returns the
        number of volunteers whose load was freed.
        """
        freed = 0
        for pattern in ("vol:*:offers",):
            for key in self.r.scan_iter(match=self.keys.prefix + pattern, count=1000):
                volunteer_id = key.decode()[len(self.keys.prefix) + len("vol:") : -len(":offers")]
                self.r.delete(key)
                self.volunteers.save(volunteer_id, {"load": 0}, create=False, now_iso="", now_epoch=0.0)
                freed += 1
        for pattern in self.ACTIVITY:
            batch = []
            for key in self.r.scan_iter(match=self.keys.prefix + pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    self.r.delete(*batch)
                    batch.clear()
            if batch:
                self.r.delete(*batch)
        return freed
