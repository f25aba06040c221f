"""The Redis store: the one module that knows key names and the Lua scripts that change state.

Every state change that two workers or two requests could race on is a single Lua script,
so Redis runs it as one atomic step. Index sets ordered by id use score 0 and rely on ids
being time-sortable, so a cursor is simply the last id seen.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import redis

from service.models import (
    Event,
    Location,
    Need,
    NeedStatus,
    Offer,
    OfferStatus,
    Requester,
    Role,
    Skill,
    Volunteer,
)

ALL_SKILLS = [s.value for s in Skill]


BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits))


def new_id(prefix: str) -> str:
    """A short time-sortable id: milliseconds then 48 random bits, base62 (sorts in ASCII order)."""
    return f"{prefix}_{_base62(int(time.time() * 1000), 8)}{_base62(secrets.randbits(48), 9)}"


def _json_list(raw: str | None) -> list:
    return json.loads(raw) if raw else []


# Shared Lua helpers. KEYS are not used because every script derives keys from one prefix
# (ARGV[1]); Aidline runs against a single Redis, not a cluster.
_LUA_PRELUDE = """
local P = ARGV[1]
local SKILLS = {__SKILLS__}
local function need_key(id) return P .. 'need:' .. id end
local function vol_key(id) return P .. 'vol:' .. id end
local function offer_key(id) return P .. 'offer:' .. id end

local function push_event(need_id, event_json)
  if event_json and event_json ~= '' then
    redis.call('RPUSH', P .. 'need:' .. need_id .. ':events', event_json)
  end
end

local function set_status(need_id, new_status, now_iso)
  local key = need_key(need_id)
  local old = redis.call('HGET', key, 'status')
  if old == new_status then return old end
  if old then redis.call('ZREM', P .. 'needs:status:' .. old, need_id) end
  redis.call('ZADD', P .. 'needs:status:' .. new_status, 0, need_id)
  redis.call('HSET', key, 'status', new_status, 'updated_at', now_iso, 'status_at', now_iso)
  if new_status == 'escalated' then
    local lon = redis.call('HGET', key, 'lon')
    local lat = redis.call('HGET', key, 'lat')
    redis.call('GEOADD', P .. 'needs:escalated:geo', lon, lat, need_id)
  elseif old == 'escalated' then
    redis.call('ZREM', P .. 'needs:escalated:geo', need_id)
  end
  return old
end

local function in_csv(skills_csv, skill)
  return string.find(',' .. skills_csv .. ',', ',' .. skill .. ',', 1, true) ~= nil
end

-- Put the volunteer in, or take them out of, the per-skill sets of available volunteers.
-- A volunteer is only ever in the sets of their own skills, so those are all that need
-- touching; every_skill also clears the others (after the skills themselves changed).
local function sync_avail(vol_id, every_skill)
  local v = redis.call('HMGET', vol_key(vol_id), 'on_duty', 'load', 'capacity', 'skills', 'lat', 'lon')
  local available = v[1] == '1' and tonumber(v[2]) < tonumber(v[3])
  local skills = v[4] or ''
  if every_skill then
    for _, s in ipairs(SKILLS) do
      if not in_csv(skills, s) then redis.call('ZREM', P .. 'avail:' .. s, vol_id) end
    end
  end
  for s in string.gmatch(skills, '[^,]+') do
    local key = P .. 'avail:' .. s
    if available then redis.call('GEOADD', key, v[6], v[5], vol_id) else redis.call('ZREM', key, vol_id) end
  end
  return available
end

local function change_load(vol_id, delta, now_epoch)
  local key = vol_key(vol_id)
  if redis.call('EXISTS', key) == 0 then return end
  local load = redis.call('HINCRBY', key, 'load', delta)
  if load < 0 then redis.call('HSET', key, 'load', 0); load = 0 end
  if load == 0 and delta < 0 then redis.call('HSET', key, 'idle_since', now_epoch) end
  sync_avail(vol_id)
end

-- End one offer: a pending one gets new_status; an accepted one becomes 'completed' when its
-- need is done, else 'withdrawn'. Either way the volunteer's capacity is freed once.
local function end_offer(offer_id, new_status, now_iso, now_epoch, reason)
  local okey = offer_key(offer_id)
  local o = redis.call('HMGET', okey, 'status', 'volunteer_id', 'need_id')
  local status = o[1]
  if status ~= 'pending' and status ~= 'accepted' then return nil end
  local target = new_status
  if status == 'accepted' then
    if new_status == 'completed' then target = 'completed' else target = 'withdrawn' end
  elseif new_status == 'completed' then
    target = 'withdrawn'
  end
  redis.call('HSET', okey, 'status', target, 'decided_at', now_iso)
  if reason and reason ~= '' then redis.call('HSET', okey, 'reason', reason) end
  redis.call('ZREM', P .. 'offers:pending', offer_id)
  change_load(o[2], -1, now_epoch)
  local nkey = need_key(o[3])
  redis.call('HINCRBY', nkey, 'active', -1)
  if status == 'accepted' then redis.call('HINCRBY', nkey, 'accepted', -1) end
  return status
end

local function end_need_offers(need_id, new_status, now_iso, now_epoch, reason)
  -- new_status: 'withdrawn' (cancel, defer, reopen) or 'completed' (done)
  local ids = redis.call('ZRANGE', P .. 'need:' .. need_id .. ':offers', 0, -1)
  for _, id in ipairs(ids) do end_offer(id, new_status, now_iso, now_epoch, reason) end
end
""".replace("__SKILLS__", ", ".join(f"'{s}'" for s in ALL_SKILLS))


# ARGV: prefix, vol_id, mode ('create'|'update'), now_iso, now_epoch, withdraw_reason, field, value, ...
# Returns the ids of needs whose pending offers were withdrawn (when the volunteer went off duty).
_SAVE_VOLUNTEER = """
local id, mode, now_iso, now_epoch, reason = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local key = vol_key(id)
local exists = redis.call('EXISTS', key) == 1
if mode == 'create' and exists then return redis.error_reply('exists') end
if mode == 'update' and not exists then return redis.error_reply('missing') end
local was_on = redis.call('HGET', key, 'on_duty')
for i = 7, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', key, ARGV[i]) else redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
end
local v = redis.call('HMGET', key, 'lat', 'lon', 'on_duty')
if mode == 'create' then redis.call('RPUSH', P .. 'vols', id) end
redis.call('GEOADD', P .. 'vols:geo', v[2], v[1], id)
if v[3] == '1' and was_on ~= '1' then redis.call('HSET', key, 'idle_since', now_epoch) end
local touched = {}
if v[3] ~= '1' then
  local offers = redis.call('ZRANGE', P .. 'vol:' .. id .. ':offers', 0, -1)
  for _, oid in ipairs(offers) do
    local o = redis.call('HMGET', offer_key(oid), 'status', 'need_id')
    if o[1] == 'pending' then
      end_offer(oid, 'withdrawn', now_iso, now_epoch, reason)
      local ev = cjson.encode({at = now_iso, type = 'offer_withdrawn', actor = 'volunteer:' .. id,
        detail = {offer_id = oid, volunteer_id = id, reason = reason}})
      push_event(o[2], ev)
      local n = redis.call('HMGET', need_key(o[2]), 'status', 'active', 'accepted')
      if n[1] == 'offered' and tonumber(n[2]) == 0 then set_status(o[2], 'matching', now_iso) end
      table.insert(touched, o[2])
    end
  end
end
sync_avail(id, true)
return touched
"""

# ARGV: prefix, need_id, vol_id, offer_id, now_iso, now_ms, expires_iso, expires_epoch,
#       distance_km, required_skills_csv, code, event_json, enforce_duty ('1'|'0'), accept ('1'|'0'),
#       committed_deadline_iso, committed_deadline_epoch, code_ttl, first_offer_bucket, seconds_since_intake
# Returns 'ok', 'ok:first' (the need's first offer, counted in the intake-to-first-offer
# histogram), 'code_taken' (pick another SMS code) or why not.
# Reserves one unit of the volunteer's capacity for the need, atomically re-checking everything.
_RESERVE = """
local need_id, vol_id, offer_id = ARGV[2], ARGV[3], ARGV[4]
local now_iso, now_ms = ARGV[5], ARGV[6]
local nkey, vkey = need_key(need_id), vol_key(vol_id)
local n = redis.call('HMGET', nkey, 'status', 'active', 'volunteers_needed', 'accepted')
if not n[1] then return 'no_need' end
local status = n[1]
if status ~= 'queued' and status ~= 'matching' and status ~= 'offered' and status ~= 'escalated' then
  return 'need_status:' .. status
end
if tonumber(n[2]) >= tonumber(n[3]) then return 'need_full' end
local tried = P .. 'need:' .. need_id .. ':tried'
if redis.call('SISMEMBER', tried, vol_id) == 1 and ARGV[14] ~= '1' then return 'tried' end
local v = redis.call('HMGET', vkey, 'on_duty', 'load', 'capacity', 'skills')
if not v[3] then return 'no_volunteer' end
if ARGV[13] == '1' and v[1] ~= '1' then return 'off_duty' end
if tonumber(v[2]) >= tonumber(v[3]) then return 'at_capacity' end
if ARGV[13] == '1' then
  for s in string.gmatch(ARGV[10], '[^,]+') do
    if not in_csv(v[4], s) then return 'missing_skill:' .. s end
  end
end
-- an earlier offer on this need to the same volunteer (a dispatcher re-assigning) must be over
local existing = redis.call('ZRANGE', P .. 'need:' .. need_id .. ':offers', 0, -1)
for _, oid in ipairs(existing) do
  local o = redis.call('HMGET', offer_key(oid), 'volunteer_id', 'status')
  if o[1] == vol_id and (o[2] == 'pending' or o[2] == 'accepted') then return 'already_offered' end
end
if ARGV[11] ~= '' then
  local code_key = P .. 'offercode:' .. ARGV[11]
  if redis.call('EXISTS', code_key) == 1 then return 'code_taken' end
  redis.call('SET', code_key, offer_id, 'EX', ARGV[17])
end
redis.call('SADD', tried, vol_id)
redis.call('HINCRBY', vkey, 'load', 1)
sync_avail(vol_id)
local offer_status = 'pending'
if ARGV[14] == '1' then offer_status = 'accepted' end
redis.call('HSET', offer_key(offer_id), 'id', offer_id, 'need_id', need_id, 'volunteer_id', vol_id,
  'status', offer_status, 'created_at', now_iso, 'expires_at', ARGV[7], 'expires_epoch', ARGV[8],
  'distance_km', ARGV[9], 'code', ARGV[11])
redis.call('ZADD', P .. 'need:' .. need_id .. ':offers', now_ms, offer_id)
redis.call('ZADD', P .. 'vol:' .. vol_id .. ':offers', now_ms, offer_id)
redis.call('HINCRBY', nkey, 'active', 1)
local made = redis.call('HINCRBY', nkey, 'offers_made', 1)
push_event(need_id, ARGV[12])
if offer_status == 'pending' then
  redis.call('ZADD', P .. 'offers:pending', ARGV[8], offer_id)
  set_status(need_id, 'offered', now_iso)
else
  redis.call('HSET', offer_key(offer_id), 'decided_at', now_iso)
  local accepted = redis.call('HINCRBY', nkey, 'accepted', 1)
  if accepted >= tonumber(n[3]) then
    set_status(need_id, 'assigned', now_iso)
    redis.call('HSET', nkey, 'committed_deadline', ARGV[15])
    redis.call('ZADD', P .. 'needs:due', ARGV[16], need_id)
  else
    set_status(need_id, 'offered', now_iso)
  end
end
if made == 1 then
  if ARGV[18] ~= '' then
    local hist = P .. 'hist:intake_to_first_offer'
    redis.call('HINCRBY', hist, ARGV[18], 1)
    redis.call('HINCRBY', hist, '_count', 1)
    redis.call('HINCRBYFLOAT', hist, '_sum', ARGV[19])
  end
  return 'ok:first'
end
return 'ok'
"""

# ARGV: prefix, offer_id, now_iso, now_epoch, committed_iso, committed_epoch, event_json, assigned_event_json
_ACCEPT = """
local offer_id, now_iso, now_epoch = ARGV[2], ARGV[3], tonumber(ARGV[4])
local okey = offer_key(offer_id)
local o = redis.call('HMGET', okey, 'status', 'need_id', 'expires_epoch')
if not o[1] then return 'no_offer' end
if o[1] ~= 'pending' then return 'offer_status:' .. o[1] end
if tonumber(o[3]) <= now_epoch then return 'offer_status:expired' end
local nkey = need_key(o[2])
local n = redis.call('HMGET', nkey, 'status', 'volunteers_needed')
if n[1] ~= 'offered' and n[1] ~= 'escalated' then return 'need_status:' .. n[1] end
redis.call('HSET', okey, 'status', 'accepted', 'decided_at', now_iso)
redis.call('ZREM', P .. 'offers:pending', offer_id)
push_event(o[2], ARGV[7])
local accepted = redis.call('HINCRBY', nkey, 'accepted', 1)
if accepted >= tonumber(n[2]) then
  set_status(o[2], 'assigned', now_iso)
  redis.call('HSET', nkey, 'committed_deadline', ARGV[5])
  redis.call('ZADD', P .. 'needs:due', ARGV[6], o[2])
  push_event(o[2], ARGV[8])
  -- the need is fully staffed: withdraw offers still pending
  local ids = redis.call('ZRANGE', P .. 'need:' .. o[2] .. ':offers', 0, -1)
  for _, id in ipairs(ids) do
    if redis.call('HGET', offer_key(id), 'status') == 'pending' then
      end_offer(id, 'withdrawn', now_iso, now_epoch, 'need fully assigned')
    end
  end
end
return 'ok'
"""

# ARGV: prefix, offer_id, new_status, now_iso, now_epoch, reason, event_json, only_if_due ('1'|'0')
# Ends a pending offer (declined, expired, withdrawn) and frees the volunteer's capacity.
_RELEASE = """
local offer_id, new_status, now_iso, now_epoch = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local o = redis.call('HMGET', offer_key(offer_id), 'status', 'need_id', 'expires_epoch')
if not o[1] then return 'no_offer' end
if o[1] ~= 'pending' then return 'offer_status:' .. o[1] end
if ARGV[8] == '1' and tonumber(o[3]) > now_epoch then return 'not_due' end
end_offer(offer_id, new_status, now_iso, now_epoch, ARGV[6])
push_event(o[2], ARGV[7])
local n = redis.call('HMGET', need_key(o[2]), 'status', 'active')
if n[1] == 'offered' and tonumber(n[2]) == 0 then set_status(o[2], 'matching', now_iso) end
return 'ok'
"""

# ARGV: prefix, need_id, allowed_csv, new_status, now_iso, now_epoch, event_json, release ('none'|'all'),
#       release_reason, clear_tried ('1'|'0'), unless_staffed ('1'|'0'), field, value, ...
# release 'all' withdraws every live offer; 'done' completes accepted ones and withdraws pending ones.
# Moves a need to a new status if its current status allows it; optionally ends its offers.
_TRANSITION = """
local need_id, new_status, now_iso, now_epoch = ARGV[2], ARGV[4], ARGV[5], ARGV[6]
local nkey = need_key(need_id)
local current = redis.call('HGET', nkey, 'status')
if not current then return 'no_need' end
if not in_csv(ARGV[3], current) then return 'need_status:' .. current end
if ARGV[11] == '1' then
  local n = redis.call('HMGET', nkey, 'active', 'volunteers_needed')
  if tonumber(n[1]) >= tonumber(n[2]) then return 'staffed' end
end
if ARGV[8] == 'all' then end_need_offers(need_id, 'withdrawn', now_iso, now_epoch, ARGV[9]) end
if ARGV[8] == 'done' then end_need_offers(need_id, 'completed', now_iso, now_epoch, '') end
if ARGV[10] == '1' then redis.call('DEL', P .. 'need:' .. need_id .. ':tried') end
for i = 12, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', nkey, ARGV[i]) else redis.call('HSET', nkey, ARGV[i], ARGV[i + 1]) end
end
if new_status ~= 'assigned' and new_status ~= 'en_route' and new_status ~= 'on_site' then
  redis.call('ZREM', P .. 'needs:due', need_id)
end
set_status(need_id, new_status, now_iso)
redis.call('HSET', nkey, 'updated_at', now_iso)
push_event(need_id, ARGV[7])
return 'ok:' .. current
"""


# KEYS: delivery, need deliveries; ARGV: delivery_id, score, field, value, ...
_CREATE_DELIVERY = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""


def _lua(body: str) -> str:
    return _LUA_PRELUDE + body


class Store:
    """Reads and writes Aidline's records in Redis."""

    def __init__(self, client: redis.Redis, *, prefix: str = "aidline:") -> None:
        self.r = client
        self.p = prefix
        self._save_volunteer = client.register_script(_lua(_SAVE_VOLUNTEER))
        self._reserve = client.register_script(_lua(_RESERVE))
        self._accept = client.register_script(_lua(_ACCEPT))
        self._release = client.register_script(_lua(_RELEASE))
        self._transition = client.register_script(_lua(_TRANSITION))
        self._create_delivery = client.register_script(_CREATE_DELIVERY)

    # ---- key names -------------------------------------------------------------------------
    def k(self, *parts: str) -> str:
        return self.p + ":".join(parts)

    def ping(self) -> bool:
        return bool(self.r.ping())

    # ---- volunteers ------------------------------------------------------------------------
    def save_volunteer(
        self,
        volunteer_id: str,
        fields: dict[str, Any],
        *,
        create: bool,
        now_iso: str,
        now_epoch: float,
        withdraw_reason: str = "volunteer went off duty",
    ) -> list[str]:
        """Create or update a volunteer and its indexes; returns needs whose offers were withdrawn."""
        args: list[Any] = [
            self.p,
            volunteer_id,
            "create" if create else "update",
            now_iso,
            now_epoch,
            withdraw_reason,
        ]
        for name, value in fields.items():
            args += [name, _encode(value)]
        try:
            touched = self._save_volunteer(args=args)
        except redis.ResponseError as exc:
            if "exists" in str(exc):
                raise KeyError(volunteer_id) from exc
            if "missing" in str(exc):
                raise LookupError(volunteer_id) from exc
            raise
        return [_s(t) for t in touched]

    def get_volunteer(self, volunteer_id: str) -> Volunteer | None:
        data = self.r.hgetall(self.k("vol", volunteer_id))
        return _volunteer(volunteer_id, data) if data else None

    def candidate_rows(self, volunteer_ids: list[str]) -> list[list[str | None]]:
        """Just what matching needs of each volunteer: lat, lon, skills, on_duty, load, capacity, idle_since."""
        pipe = self.r.pipeline(transaction=False)
        for vid in volunteer_ids:
            pipe.hmget(self.k("vol", vid), "lat", "lon", "skills", "on_duty", "load", "capacity", "idle_since")
        return [[_s(x) if x is not None else None for x in row] for row in pipe.execute()]

    def get_volunteers(self, volunteer_ids: list[str]) -> list[Volunteer | None]:
        pipe = self.r.pipeline(transaction=False)
        for vid in volunteer_ids:
            pipe.hgetall(self.k("vol", vid))
        return [_volunteer(vid, d) if d else None for vid, d in zip(volunteer_ids, pipe.execute(), strict=True)]

    def volunteer_ids_range(self, *, start: int, count: int) -> list[str]:
        """Volunteer ids in order of registration (an append-only list, so offsets are stable)."""
        return [_s(x) for x in self.r.lrange(self.k("vols"), start, start + count - 1)]

    def volunteer_count(self) -> int:
        return int(self.r.llen(self.k("vols")))

    def volunteers_near(self, *, lat: float, lon: float, radius_km: float) -> list[tuple[str, float]]:
        """All volunteers whose live position is within the radius, nearest first."""
        rows: list[Any] = self.r.geosearch(
            self.k("vols:geo"),
            longitude=lon,
            latitude=lat,
            radius=radius_km,
            unit="km",
            sort="ASC",
            withdist=True,
        )
        return [(_s(m), float(d)) for m, d in rows]

    def available_near(
        self, *, skill: str, lat: float, lon: float, radius_km: float, count: int
    ) -> list[tuple[str, float]]:
        """Nearest available volunteers with a skill, from the small per-skill GEO set."""
        rows: list[Any] = self.r.geosearch(
            self.k("avail", skill),
            longitude=lon,
            latitude=lat,
            radius=radius_km,
            unit="km",
            sort="ASC",
            count=count,
            withdist=True,
        )
        return [(_s(m), float(d)) for m, d in rows]

    def volunteer_offer_ids(self, volunteer_id: str, *, limit: int = 100) -> list[str]:
        return [_s(x) for x in self.r.zrevrange(self.k("vol", volunteer_id, "offers"), 0, limit - 1)]

    # ---- needs -----------------------------------------------------------------------------
    def create_need(self, need: Need, event: Event) -> None:
        """Write a new need, its indexes, tracking code and first event in one transaction."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.k("need", need.id), mapping=_need_fields(need))
        pipe.zadd(self.k("needs"), {need.id: 0})
        pipe.zadd(self.k("needs:status", need.status), {need.id: 0})
        pipe.geoadd(self.k("needs:geo"), (need.location.lon, need.location.lat, need.id))
        if need.created_by:
            pipe.zadd(self.k("needs:by", need.created_by), {need.id: 0})
        pipe.set(self.k("track", need.tracking_code), need.id)
        pipe.rpush(self.k("need", need.id, "events"), _event_json(event))
        pipe.execute()

    def get_need(self, need_id: str) -> Need | None:
        data = self.r.hgetall(self.k("need", need_id))
        return _need(data) if data else None

    def get_needs(self, need_ids: list[str]) -> list[Need | None]:
        pipe = self.r.pipeline(transaction=False)
        for nid in need_ids:
            pipe.hgetall(self.k("need", nid))
        return [_need(d) if d else None for d in pipe.execute()]

    def need_id_for_tracking(self, code: str) -> str | None:
        raw = self.r.get(self.k("track", code))
        return _s(raw) if raw else None

    def need_ids_page(self, *, status: str | None, created_by: str | None, before: str | None, limit: int) -> list[str]:
        """Need ids newest first from the most selective index, starting before the cursor."""
        if created_by is not None:
            key = self.k("needs:by", created_by)
        elif status is not None:
            key = self.k("needs:status", status)
        else:
            key = self.k("needs")
        high = f"({before}" if before else "+"
        return [_s(x) for x in self.r.zrevrangebylex(key, high, "-", start=0, num=limit)]

    def needs_near(self, *, lat: float, lon: float, radius_km: float, escalated_only: bool = False) -> list[str]:
        key = self.k("needs:escalated:geo") if escalated_only else self.k("needs:geo")
        return [_s(m) for m in self.r.geosearch(key, longitude=lon, latitude=lat, radius=radius_km, unit="km")]

    def need_ids_with_status(self, status: str, *, limit: int = 10_000) -> list[str]:
        return [_s(x) for x in self.r.zrange(self.k("needs:status", status), 0, limit - 1)]

    def count_by_status(self) -> dict[str, int]:
        pipe = self.r.pipeline(transaction=False)
        for s in NeedStatus:
            pipe.zcard(self.k("needs:status", s.value))
        return {s.value: int(n) for s, n in zip(NeedStatus, pipe.execute(), strict=True)}

    def overdue_need_ids(self, *, now_epoch: float) -> list[str]:
        """Assigned or in-progress needs past their committed deadline."""
        return [_s(x) for x in self.r.zrangebyscore(self.k("needs:due"), "-inf", now_epoch)]

    def events(self, need_id: str) -> list[Event]:
        return [Event(**json.loads(raw)) for raw in self.r.lrange(self.k("need", need_id, "events"), 0, -1)]

    def add_event(self, need_id: str, event: Event) -> None:
        self.r.rpush(self.k("need", need_id, "events"), _event_json(event))

    def set_need_fields(self, need_id: str, fields: dict[str, Any]) -> None:
        self.r.hset(self.k("need", need_id), mapping={k: _encode(v) for k, v in fields.items()})

    def need_field(self, need_id: str, name: str) -> str | None:
        raw = self.r.hget(self.k("need", need_id), name)
        return _s(raw) if raw else None

    def transition(self, need_id: str, **options: Any) -> str:
        """Atomically move a need between statuses (options as for _transition_args);
        returns 'ok:<old status>' or the refusal."""
        return _s(self._transition(args=self._transition_args(need_id, **options)))

    def _transition_args(
        self,
        need_id: str,
        *,
        allowed_from: Iterable[str],
        to: str,
        now_iso: str,
        now_epoch: float,
        event: Event | None,
        release_offers: bool = False,
        release_reason: str = "",
        clear_tried: bool = False,
        unless_staffed: bool = False,
        fields: dict[str, Any] | None = None,
    ) -> list[Any]:
        """Arguments of the transition script: move the need from one of allowed_from to `to`.

        release_offers ends every live offer: withdrawn, or completed when `to` is done;
        clear_tried lets volunteers offered before be offered again; unless_staffed refuses
        when the need already has all the offers it asked for.
        """
        args: list[Any] = [
            self.p,
            need_id,
            ",".join(allowed_from),
            to,
            now_iso,
            now_epoch,
            _event_json(event) if event else "",
            ("done" if to == NeedStatus.DONE.value else "all") if release_offers else "none",
            release_reason,
            "1" if clear_tried else "0",
            "1" if unless_staffed else "0",
        ]
        for name, value in (fields or {}).items():
            args += [name, _encode(value)]
        return args

    def begin_matching(
        self, need_id: str, skills: list[str], *, start: Event | None, now_epoch: float
    ) -> tuple[set[str], dict[str, int]]:
        """One round trip: move a queued need to matching (when `start` is given), then read the
        volunteers already offered this need and how many are available per required skill."""
        pipe = self.r.pipeline(transaction=False)
        if start is not None:
            args = self._transition_args(
                need_id, allowed_from=["queued"], to="matching", now_iso=start.at, now_epoch=now_epoch, event=start
            )
            self._transition(args=args, client=pipe)  # refused if another worker started first: fine
        pipe.smembers(self.k("need", need_id, "tried"))
        for skill in skills:
            pipe.zcard(self.k("avail", skill))
        replies = pipe.execute()
        tried, *sizes = replies[1:] if start is not None else replies
        return {_s(x) for x in tried}, {skill: int(n) for skill, n in zip(skills, sizes, strict=True)}

    # ---- offers ----------------------------------------------------------------------------
    def reserve(
        self,
        *,
        need_id: str,
        volunteer_id: str,
        offer_id: str,
        now_iso: str,
        now_ms: int,
        expires_iso: str,
        expires_epoch: float,
        distance_km: float,
        required_skills: list[str],
        code: str,
        code_ttl: int = 86400,
        event: Event,
        direct_assignment: bool = False,
        committed_iso: str = "",
        committed_epoch: float = 0.0,
        since_intake: float = 0.0,
        latency_buckets: tuple[float, ...] = (),
    ) -> str:
        """Atomically reserve a volunteer for a need and record the offer; returns 'ok' or why not."""
        return _s(
            self._reserve(
                args=[
                    self.p,
                    need_id,
                    volunteer_id,
                    offer_id,
                    now_iso,
                    now_ms,
                    expires_iso,
                    expires_epoch,
                    round(distance_km, 3),
                    ",".join(required_skills),
                    code,
                    _event_json(event),
                    "0" if direct_assignment else "1",
                    "1" if direct_assignment else "0",
                    committed_iso,
                    committed_epoch,
                    code_ttl,
                    bucket_label(since_intake, latency_buckets) if latency_buckets else "",
                    since_intake,
                ]
            )
        )

    def accept_offer(
        self,
        *,
        offer_id: str,
        now_iso: str,
        now_epoch: float,
        committed_iso: str,
        committed_epoch: float,
        event: Event,
        assigned_event: Event,
    ) -> str:
        return _s(
            self._accept(
                args=[
                    self.p,
                    offer_id,
                    now_iso,
                    now_epoch,
                    committed_iso,
                    committed_epoch,
                    _event_json(event),
                    _event_json(assigned_event),
                ]
            )
        )

    def release_offer(
        self,
        *,
        offer_id: str,
        status: OfferStatus,
        now_iso: str,
        now_epoch: float,
        reason: str,
        event: Event,
        only_if_due: bool = False,
    ) -> str:
        return _s(
            self._release(
                args=[
                    self.p,
                    offer_id,
                    status.value,
                    now_iso,
                    now_epoch,
                    reason,
                    _event_json(event),
                    "1" if only_if_due else "0",
                ]
            )
        )

    def get_offer(self, offer_id: str) -> Offer | None:
        data = self.r.hgetall(self.k("offer", offer_id))
        return _offer(data) if data else None

    def get_offers(self, offer_ids: list[str]) -> list[Offer]:
        pipe = self.r.pipeline(transaction=False)
        for oid in offer_ids:
            pipe.hgetall(self.k("offer", oid))
        return [_offer(d) for d in pipe.execute() if d]

    def need_offers(self, need_id: str) -> list[Offer]:
        return self.get_offers([_s(x) for x in self.r.zrange(self.k("need", need_id, "offers"), 0, -1)])

    def offer_id_for_code(self, code: str) -> str | None:
        raw = self.r.get(self.k("offercode", code))
        return _s(raw) if raw else None

    def due_offer_ids(self, *, now_epoch: float, limit: int = 1000) -> list[str]:
        """Pending offers whose accept-by time has passed."""
        return [_s(x) for x in self.r.zrangebyscore(self.k("offers:pending"), "-inf", now_epoch, start=0, num=limit)]

    # ---- notifications ---------------------------------------------------------------------
    def create_delivery(self, delivery_id: str, *, need_id: str, fields: dict[str, Any]) -> bool:
        """Record a planned delivery unless it exists already; True when this call created it."""
        args: list[Any] = [delivery_id, time.time()]
        for name, value in fields.items():
            args += [name, _encode(value)]
        keys = [self.k("delivery", delivery_id), self.k("need", need_id, "deliveries")]
        return bool(self._create_delivery(keys=keys, args=args))

    def get_delivery(self, delivery_id: str) -> dict[str, Any] | None:
        data = _decode_hash(self.r.hgetall(self.k("delivery", delivery_id)))
        if "need_id" not in data:
            return None
        out: dict[str, Any] = dict(data)
        out["channels"] = _json_list(data.get("channels"))
        out["attempts"] = [json.loads(a) for a in self.r.lrange(self.k("delivery", delivery_id, "attempts"), 0, -1)]
        return out

    def record_attempt(self, delivery_id: str, attempt: dict[str, Any], *, sent: bool) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.rpush(self.k("delivery", delivery_id, "attempts"), json.dumps(attempt))
        if sent:
            pipe.hset(self.k("delivery", delivery_id), mapping={"status": "sent", "sent_at": attempt["at"]})
        else:
            pipe.incr(self.k("stats", "notification_failures"))
        pipe.execute()

    def next_channel(self, delivery_id: str, index: int) -> None:
        self.r.hset(self.k("delivery", delivery_id), "channel_index", index)

    def fail_delivery(self, delivery_id: str) -> None:
        self.r.hset(self.k("delivery", delivery_id), "status", "failed")

    def need_deliveries(self, need_id: str) -> list[dict[str, Any]]:
        ids = [_s(x) for x in self.r.zrange(self.k("need", need_id, "deliveries"), 0, -1)]
        return [d for d in (self.get_delivery(i) for i in ids) if d is not None]

    # ---- tokens ----------------------------------------------------------------------------
    def save_token(self, *, token: str, token_id: str, role: Role, volunteer_id: str | None, now_iso: str) -> None:
        digest = _digest(token)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(
            self.k("token", digest),
            mapping={
                "id": token_id,
                "role": role.value,
                "volunteer_id": volunteer_id or "",
                "created_at": now_iso,
            },
        )
        pipe.set(self.k("tokenid", token_id), digest)
        pipe.execute()

    def token_record(self, token: str) -> dict[str, str] | None:
        data = self.r.hgetall(self.k("token", _digest(token)))
        return {_s(k): _s(v) for k, v in data.items()} if data else None

    def revoke_token(self, token_or_id: str) -> bool:
        """Revoke by token id or by the token itself."""
        digest = self.r.get(self.k("tokenid", token_or_id))
        if digest is not None:
            token_id = token_or_id
            digest_s = _s(digest)
        else:
            digest_s = _digest(token_or_id)
            token_id = _s(self.r.hget(self.k("token", digest_s), "id") or b"")
            if not token_id:
                return False
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.k("token", digest_s))
        pipe.delete(self.k("tokenid", token_id))
        pipe.execute()
        return True

    # ---- counters and histograms for /metrics, shared by every process ----------------------
    def incr_stat(self, name: str, amount: int = 1) -> None:
        self.r.incrby(self.k("stats", name), amount)

    def stat(self, name: str) -> int:
        return int(self.r.get(self.k("stats", name)) or 0)

    def observe(self, name: str, value: float, buckets: tuple[float, ...]) -> None:
        """Count one observation in the first bucket that holds it (cumulated when read)."""
        bucket = bucket_label(value, buckets)
        pipe = self.r.pipeline(transaction=True)
        key = self.k("hist", name)
        pipe.hincrby(key, bucket, 1)
        pipe.hincrby(key, "_count", 1)
        pipe.hincrbyfloat(key, "_sum", value)
        pipe.execute()

    def histogram(self, name: str) -> dict[str, float]:
        return {_s(k): float(v) for k, v in self.r.hgetall(self.k("hist", name)).items()}

    def overdue_count(self, *, now_epoch: float) -> int:
        return int(self.r.zcount(self.k("needs:due"), "-inf", now_epoch))

    # ---- idempotency -----------------------------------------------------------------------
    def idempotency_claim(self, scope: str, key: str, body_hash: str, *, ttl_seconds: int) -> dict[str, str] | None:
        """Claim a key for a request, or return the stored record of the request that claimed it first."""
        name = self.k("idem", hashlib.sha256(f"{scope}|{key}".encode()).hexdigest())
        if self.r.hsetnx(name, "body_hash", body_hash):
            self.r.expire(name, ttl_seconds)
            return None
        return _decode_hash(self.r.hgetall(name))

    def idempotency_store(self, scope: str, key: str, *, status: int, body: str, ttl_seconds: int) -> None:
        name = self.k("idem", hashlib.sha256(f"{scope}|{key}".encode()).hexdigest())
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(name, mapping={"status": status, "body": body})
        pipe.expire(name, ttl_seconds)
        pipe.execute()

    def idempotency_forget(self, scope: str, key: str) -> None:
        self.r.delete(self.k("idem", hashlib.sha256(f"{scope}|{key}".encode()).hexdigest()))

    # ---- small key-value helpers -----------------------------------------------------------
    def set_once(self, name: str, value: str, *, ttl_seconds: int) -> bool:
        """Set a marker if it is not there yet; True when this call set it."""
        return bool(self.r.set(self.k("once", name), value, nx=True, ex=ttl_seconds))


# ---- encoding ----------------------------------------------------------------------------------


def bucket_label(value: float, buckets: tuple[float, ...]) -> str:
    """The histogram bucket an observation falls in: the first bound that holds it."""
    return next((f"{b:g}" for b in buckets if value <= b), "+Inf")


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _event_json(event: Event) -> str:
    return json.dumps(asdict(event), ensure_ascii=False, separators=(",", ":"))


def _decode_hash(data: dict) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in data.items()}


def _opt(value: str | None) -> str | None:
    return value if value else None


def _volunteer(volunteer_id: str, raw: dict) -> Volunteer:
    d = _decode_hash(raw)
    return Volunteer(
        id=volunteer_id,
        name=d["name"],
        phone=d["phone"],
        skills=[s for s in d.get("skills", "").split(",") if s],
        home=Location(float(d["home_lat"]), float(d["home_lon"])),
        location=Location(float(d["lat"]), float(d["lon"])),
        capacity=int(d["capacity"]),
        load=int(d.get("load", "0")),
        on_duty=d.get("on_duty") == "1",
        channels=_json_list(d.get("channels")),
        locale=d.get("locale", "zh"),
        team=_opt(d.get("team")),
        grid=_opt(d.get("grid")),
        created_at=d["created_at"],
        updated_at=d.get("updated_at", d["created_at"]),
        location_at=d.get("location_at", d["created_at"]),
        idle_since=float(d.get("idle_since") or 0),
    )


def volunteer_fields(v: Volunteer) -> dict[str, Any]:
    """The hash fields of a volunteer record (its id is in the key)."""
    return {
        "name": v.name,
        "phone": v.phone,
        "skills": ",".join(v.skills),
        "home_lat": round(v.home.lat, 6),
        "home_lon": round(v.home.lon, 6),
        "lat": round(v.location.lat, 6),
        "lon": round(v.location.lon, 6),
        "capacity": v.capacity,
        "load": v.load,
        "on_duty": v.on_duty,
        "channels": v.channels or None,
        "locale": v.locale,
        "team": v.team,
        "grid": v.grid,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
        "location_at": v.location_at,
        "idle_since": round(v.idle_since, 1),
    }


def _need_fields(n: Need) -> dict[Any, Any]:
    return {
        k: _encode(v)
        for k, v in {
            "id": n.id,
            "kind": n.kind,
            "status": n.status,
            "priority": n.priority,
            "skills": ",".join(n.skills),
            "lat": n.location.lat,
            "lon": n.location.lon,
            "address": n.address,
            "vulnerability": ",".join(n.vulnerability),
            "volunteers_needed": n.volunteers_needed,
            "description": n.description,
            "requester_name": n.requester.name,
            "requester_phone": n.requester.phone,
            "requester_locale": n.requester_locale,
            "tracking_code": n.tracking_code,
            "created_at": n.created_at,
            "updated_at": n.updated_at,
            "status_at": n.created_at,
            "deadline": n.deadline,
            "created_by": n.created_by,
            "grid": n.grid,
            "offers_made": 0,
            "accepted": 0,
            "active": 0,
        }.items()
    }


def _need(raw: dict) -> Need:
    d = _decode_hash(raw)
    return Need(
        id=d["id"],
        kind=d["kind"],
        status=d["status"],
        priority=d["priority"],
        skills=[s for s in d.get("skills", "").split(",") if s],
        location=Location(float(d["lat"]), float(d["lon"])),
        address=_opt(d.get("address")),
        vulnerability=[s for s in d.get("vulnerability", "").split(",") if s],
        volunteers_needed=int(d["volunteers_needed"]),
        description=_opt(d.get("description")),
        requester=Requester(name=_opt(d.get("requester_name")), phone=_opt(d.get("requester_phone"))),
        tracking_code=d["tracking_code"],
        created_at=d["created_at"],
        updated_at=d.get("updated_at", d["created_at"]),
        deadline=d["deadline"],
        created_by=_opt(d.get("created_by")),
        grid=_opt(d.get("grid")),
        committed_deadline=_opt(d.get("committed_deadline")),
        offers_made=int(d.get("offers_made") or 0),
        accepted=int(d.get("accepted") or 0),
        active=int(d.get("active") or 0),
        status_reason=_opt(d.get("status_reason")),
        rating=int(d["rating"]) if d.get("rating") else None,
        feedback_comment=_opt(d.get("feedback_comment")),
        flagged=d.get("flagged") == "1",
        requester_locale=_opt(d.get("requester_locale")),
    )


def _offer(raw: dict) -> Offer:
    d = _decode_hash(raw)
    return Offer(
        id=d["id"],
        need_id=d["need_id"],
        volunteer_id=d["volunteer_id"],
        status=d["status"],
        created_at=d["created_at"],
        expires_at=d["expires_at"],
        distance_km=float(d.get("distance_km") or 0),
        code=d.get("code", ""),
        reason=_opt(d.get("reason")),
        decided_at=_opt(d.get("decided_at")),
    )
