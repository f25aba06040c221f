-- assign.lua: a dispatcher's direct assignment: reserve one unit of the volunteer's capacity for
-- one role of the need and record it as an accepted offer, re-checking the need and the volunteer
-- in the same step; the need is assigned once every role has all the volunteers it asks for.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {need_id, volunteer_id, offer_id, role (0-based index), now_iso, now_epoch,
--                distance_km, event (JSON), committed_iso, committed_epoch, bucket
--                (intake-to-first-offer histogram bucket, counted when this is the need's first
--                offer), since_intake, override (the dispatcher's choice stands over duty and skills)}
-- Answers {'ok'}, or a refusal: no_need, need_status (detail: the status), need_full (the role
-- has no free place), no_volunteer, off_duty, lacks_skills (detail: the role's skills, comma-separated),
-- at_capacity, already_offered.
local a = cjson.decode(ARGV[2])
local need_id, vol_id, offer_id, now_iso = a.need_id, a.volunteer_id, a.offer_id, a.now_iso
local nkey, vkey = need_key(need_id), vol_key(vol_id)
local status = redis.call('HGET', nkey, 'status')
if not status then return refuse('no_need') end
if not MATCHABLE[status] then return refuse('need_status', status) end
local roles = need_roles(nkey)
local r = tonumber(a.role or 0) or 0
local role = roles[r + 1]
if not role then return refuse('need_full') end
local active_r = role_counts(nkey, roles, r)
if active_r >= role.count then return refuse('need_full') end
local v = redis.call('HMGET', vkey, 'load', 'capacity', 'on_duty', 'skills')
if not v[2] then return refuse('no_volunteer') end
if a.override ~= true then
  if v[3] ~= '1' then return refuse('off_duty') end
  for _, skill in ipairs(role.skills) do
    if skill ~= 'general' and not in_csv(v[4] or '', skill) then return refuse('lacks_skills', role.csv) end
  end
end
if tonumber(v[1]) >= tonumber(v[2]) then return refuse('at_capacity') end
-- an earlier offer on this need to the same volunteer must be over
for _, oid in ipairs(redis.call('ZRANGE', nkey .. ':offers', 0, -1)) do
  local o = redis.call('HMGET', offer_key(oid), 'volunteer_id', 'status')
  if o[1] == vol_id and (o[2] == OFFER.pending or o[2] == OFFER.accepted) then return refuse('already_offered') end
end
redis.call('SADD', nkey .. ':tried', vol_id)
take_capacity(vol_id)
redis.call('HSET', offer_key(offer_id), 'id', offer_id, 'need_id', need_id, 'volunteer_id', vol_id,
  'status', OFFER.accepted, 'created_at', now_iso, 'expires_at', now_iso, 'expires_epoch', a.now_epoch,
  'distance_km', a.distance_km, 'code', '', 'decided_at', now_iso, 'role', r)
local now_ms = string.format('%d', math.floor(tonumber(a.now_epoch) * 1000))
redis.call('ZADD', nkey .. ':offers', now_ms, offer_id)
redis.call('ZADD', vkey .. ':offers', now_ms, offer_id)
redis.call('HINCRBY', nkey, 'active', 1)
count_role(nkey, r, 'active', 1)
if redis.call('HINCRBY', nkey, 'offers_made', 1) == 1 then
  local hist = P .. 'hist:intake_to_first_offer'
  redis.call('HINCRBY', hist, a.bucket, 1)
  redis.call('HINCRBY', hist, '_count', 1)
  redis.call('HINCRBYFLOAT', hist, '_sum', a.since_intake)
end
push_event(need_id, a.event)
redis.call('HINCRBY', nkey, 'accepted', 1)
count_role(nkey, r, 'accepted', 1)
count_task(vol_id, tonumber(a.now_epoch))
if not assign_if_staffed(need_id, roles, now_iso, a.committed_iso, a.committed_epoch) then
  set_status(need_id, NEED.offered, now_iso)
end
return ok()
