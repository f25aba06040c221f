-- remove_need.lua: remove a need and everything it wrote, in one step, so a worker matching
-- meanwhile sees the whole need or none of it: its record, timeline, offers (a live one first
-- frees its volunteer's capacity), SMS codes, notification deliveries, tracking code, every
-- index (all needs, by status, by creator, positions, escalated, due, the match backlog), its escalation
-- ladder and
-- its place among the drill needs, in its incident (which goes too when it has no needs left)
-- and among the recent needs of its family.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {need_id, now_iso, now_epoch, reason (why live offers end), only_drill (bool)}
-- Answers {'ok', [ids of volunteers whose capacity this freed]}, or a refusal: no_need,
-- not_drill (only_drill and the need was not created by a drill).
local a = cjson.decode(ARGV[2])
local id, now_iso, now_epoch = a.need_id, a.now_iso, tonumber(a.now_epoch)
local nkey = need_key(id)
local n = redis.call('HMGET', nkey, 'status', 'tracking_code', 'created_by', 'drill', 'incident_id')
if not n[1] then
  redis.call('SREM', P .. 'drills:needs', id)
  return refuse('no_need')
end
if a.only_drill and n[4] ~= '1' then return refuse('not_drill') end
local freed = {}
for _, oid in ipairs(redis.call('ZRANGE', nkey .. ':offers', 0, -1)) do
  local okey = offer_key(oid)
  local o = redis.call('HMGET', okey, 'volunteer_id', 'code')
  if end_offer(oid, OFFER.withdrawn, now_iso, now_epoch, a.reason) and o[1] then table.insert(freed, o[1]) end
  if o[1] then redis.call('ZREM', vol_key(o[1]) .. ':offers', oid) end
  if o[2] and o[2] ~= '' and redis.call('GET', P .. 'offercode:' .. o[2]) == oid then
    redis.call('DEL', P .. 'offercode:' .. o[2])
  end
  redis.call('ZREM', P .. 'offers:pending', oid)
  redis.call('DEL', okey)
end
for _, did in ipairs(redis.call('ZRANGE', nkey .. ':deliveries', 0, -1)) do
  redis.call('DEL', P .. 'delivery:' .. did, P .. 'delivery:' .. did .. ':attempts')
end
redis.call('DEL', nkey, nkey .. ':events', nkey .. ':offers', nkey .. ':tried', nkey .. ':deliveries')
redis.call('ZREM', P .. 'needs', id)
for _, status in pairs(NEED) do redis.call('ZREM', P .. 'needs:status:' .. status, id) end
if n[3] and n[3] ~= '' then redis.call('ZREM', P .. 'needs:by:' .. n[3], id) end
redis.call('ZREM', P .. 'needs:geo', id)
redis.call('ZREM', P .. 'needs:escalated:geo', id)
redis.call('ZREM', P .. 'needs:escalated_urgent:geo', id)
redis.call('ZREM', P .. 'needs:due', id)
redis.call('ZREM', P .. 'backlog:waiting', id)
if n[2] and n[2] ~= '' then redis.call('DEL', P .. 'track:' .. n[2]) end
-- its escalation ladder and the code a captain acknowledges it with
local ack_code = redis.call('HGET', P .. 'ladder:' .. id, 'code')
if ack_code and redis.call('GET', P .. 'ackcode:' .. ack_code) == id then redis.call('DEL', P .. 'ackcode:' .. ack_code) end
redis.call('DEL', P .. 'ladder:' .. id)
redis.call('ZREM', P .. 'ladders:due', id)
redis.call('SREM', P .. 'drills:needs', id)
-- out of its incident, and out of the recent needs that could still form one
if n[5] and n[5] ~= '' then
  local ikey = P .. 'incident:' .. n[5]
  redis.call('ZREM', ikey .. ':needs', id)
  -- an incident left with no needs (a drill's own) goes too
  if redis.call('ZCARD', ikey .. ':needs') == 0 then
    local family = redis.call('HGET', ikey, 'family')
    for _, did in ipairs(redis.call('ZRANGE', ikey .. ':deliveries', 0, -1)) do
      redis.call('DEL', P .. 'delivery:' .. did, P .. 'delivery:' .. did .. ':attempts')
    end
    redis.call('DEL', ikey, ikey .. ':needs', ikey .. ':deliveries')
    redis.call('ZREM', P .. 'incidents', n[5])
    redis.call('ZREM', P .. 'incidents:geo', n[5])
    for _, status in pairs(INCIDENT) do redis.call('ZREM', P .. 'incidents:status:' .. status, n[5]) end
    if family then redis.call('ZREM', P .. 'incidents:open:' .. family, n[5]) end
  end
end
for _, family in ipairs(FAMILIES) do
  redis.call('ZREM', P .. 'incidents:recent:' .. family, id)
  redis.call('ZREM', P .. 'incidents:recent_at:' .. family, id)
end
return ok(freed)
