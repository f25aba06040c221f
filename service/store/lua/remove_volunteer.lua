-- remove_volunteer.lua: remove a volunteer in one step, unless they hold an accepted offer:
-- pending offers are withdrawn (each on its need's timeline; a need left without offers goes
-- back to matching), then the record, its offer list, the live-position index, the sets of
-- available volunteers, the phone index, the registration list and its place among the drill volunteers go.
-- The ended offers stay with their needs' history.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {volunteer_id, now_iso, now_epoch, reason (why pending offers are withdrawn),
--                only_drill (bool)}
-- Answers {'ok', [ids of needs whose pending offers were withdrawn]}, or a refusal:
-- no_volunteer, not_drill (only_drill and the volunteer was not created by a drill),
-- busy (detail: the need whose accepted offer the volunteer holds).
local a = cjson.decode(ARGV[2])
local id, now_iso, now_epoch = a.volunteer_id, a.now_iso, tonumber(a.now_epoch)
local key = vol_key(id)
if redis.call('EXISTS', key) == 0 then
  redis.call('SREM', P .. 'drills:vols', id)
  return refuse('no_volunteer')
end
if a.only_drill and redis.call('HGET', key, 'drill') ~= '1' then return refuse('not_drill') end
local offers = redis.call('ZRANGE', key .. ':offers', 0, -1)
for _, oid in ipairs(offers) do
  local o = redis.call('HMGET', offer_key(oid), 'status', 'need_id')
  if o[1] == OFFER.accepted then return refuse('busy', o[2]) end
end
local touched = {}
for _, oid in ipairs(offers) do
  local o = redis.call('HMGET', offer_key(oid), 'status', 'need_id')
  if o[1] == OFFER.pending then
    end_offer(oid, OFFER.withdrawn, now_iso, now_epoch, a.reason)
    push_event(o[2], cjson.encode({at = now_iso, type = EVENT.offer_withdrawn, actor = 'system',
      detail = {offer_id = oid, volunteer_id = id, reason = a.reason}}))
    back_to_matching_if_empty(o[2], now_iso)
    table.insert(touched, o[2])
  end
end
local skills = redis.call('HGET', key, 'skills') or ''
for s in string.gmatch(skills, '[^,]+') do redis.call('ZREM', P .. 'avail:' .. s, id) end
for pair in pairs(skill_pairs(skills)) do redis.call('ZREM', pair, id) end
redis.call('ZREM', P .. 'vols:geo', id)
redis.call('ZREM', P .. 'volunteers:holding_ordinary', id)
local phone = redis.call('HGET', key, 'phone')
if phone then redis.call('SREM', P .. 'vols:phone:' .. phone, id) end
redis.call('LREM', P .. 'vols', 1, id)
redis.call('DEL', key, key .. ':offers')
redis.call('SREM', P .. 'drills:vols', id)
return ok(touched)
