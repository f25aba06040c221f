-- reserve.lua: reserve one unit of a volunteer's capacity for a need and record the offer (a
-- pending offer, or with direct = true an accepted one: a dispatcher's assignment), re-checking
-- the need and the volunteer in the same step.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {need_id, volunteer_id, offer_id, now_iso, now_ms, expires_iso, expires_epoch,
--                distance_km, skills (csv), code (SMS code, '' for none), code_ttl, event (JSON),
--                direct (bool), committed_iso, committed_epoch,
--                bucket (intake-to-first-offer histogram bucket, '' for none), since_intake}
-- Answers {'ok', 'first' when this is the need's first offer}, or a refusal: no_need,
-- need_status (detail: the status), need_full, tried, no_volunteer, off_duty, at_capacity,
-- missing_skill (detail: the skill), already_offered, code_taken.
local a = cjson.decode(ARGV[2])
local need_id, vol_id, offer_id, now_iso = a.need_id, a.volunteer_id, a.offer_id, a.now_iso
local nkey, vkey = need_key(need_id), vol_key(vol_id)
local n = redis.call('HMGET', nkey, 'status', 'active', 'volunteers_needed', 'accepted')
if not n[1] then return refuse('no_need') end
if not MATCHABLE[n[1]] then return refuse('need_status', n[1]) end
if tonumber(n[2]) >= tonumber(n[3]) then return refuse('need_full') end
local tried = nkey .. ':tried'
if not a.direct and redis.call('SISMEMBER', tried, vol_id) == 1 then return refuse('tried') end
local v = redis.call('HMGET', vkey, 'on_duty', 'load', 'capacity', 'skills')
if not v[3] then return refuse('no_volunteer') end
if not a.direct and v[1] ~= '1' then return refuse('off_duty') end
if tonumber(v[2]) >= tonumber(v[3]) then return refuse('at_capacity') end
if not a.direct then
  for s in string.gmatch(a.skills, '[^,]+') do
    if not in_csv(v[4], s) then return refuse('missing_skill', s) end
  end
end
-- an earlier offer on this need to the same volunteer (a dispatcher re-assigning) must be over
local existing = redis.call('ZRANGE', nkey .. ':offers', 0, -1)
for _, oid in ipairs(existing) do
  local o = redis.call('HMGET', offer_key(oid), 'volunteer_id', 'status')
  if o[1] == vol_id and (o[2] == OFFER.pending or o[2] == OFFER.accepted) then return refuse('already_offered') end
end
if a.code ~= '' then
  local code_key = P .. 'offercode:' .. a.code
  if redis.call('EXISTS', code_key) == 1 then return refuse('code_taken') end
  redis.call('SET', code_key, offer_id, 'EX', a.code_ttl)
end
redis.call('SADD', tried, vol_id)
redis.call('HINCRBY', vkey, 'load', 1)
sync_avail(vol_id)
local offer_status = OFFER.pending
if a.direct then offer_status = OFFER.accepted end
redis.call('HSET', offer_key(offer_id), 'id', offer_id, 'need_id', need_id, 'volunteer_id', vol_id,
  'status', offer_status, 'created_at', now_iso, 'expires_at', a.expires_iso, 'expires_epoch', a.expires_epoch,
  'distance_km', a.distance_km, 'code', a.code)
redis.call('ZADD', nkey .. ':offers', a.now_ms, offer_id)
redis.call('ZADD', vkey .. ':offers', a.now_ms, offer_id)
redis.call('HINCRBY', nkey, 'active', 1)
local made = redis.call('HINCRBY', nkey, 'offers_made', 1)
push_event(need_id, a.event)
if offer_status == OFFER.pending then
  redis.call('ZADD', P .. 'offers:pending', a.expires_epoch, offer_id)
  set_status(need_id, NEED.offered, now_iso)
else
  redis.call('HSET', offer_key(offer_id), 'decided_at', now_iso)
  local accepted = redis.call('HINCRBY', nkey, 'accepted', 1)
  if accepted >= tonumber(n[3]) then
    set_status(need_id, NEED.assigned, now_iso)
    redis.call('HSET', nkey, 'committed_deadline', a.committed_iso)
    redis.call('ZADD', P .. 'needs:due', a.committed_epoch, need_id)
  else
    set_status(need_id, NEED.offered, now_iso)
  end
end
if made == 1 then
  if a.bucket ~= '' then
    local hist = P .. 'hist:intake_to_first_offer'
    redis.call('HINCRBY', hist, a.bucket, 1)
    redis.call('HINCRBY', hist, '_count', 1)
    redis.call('HINCRBYFLOAT', hist, '_sum', a.since_intake)
  end
  return ok('first')
end
return ok()
