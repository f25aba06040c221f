-- save_volunteer.lua: create or update a volunteer and its indexes in one step.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {volunteer_id, create (bool), now_iso, now_epoch, withdraw_reason,
--                fields: {name: value, ...} (an empty value deletes the field)}
-- A volunteer created with the field drill = '1' is also listed among the drill volunteers.
-- The phone index (vols:phone:<phone>, the ids with that phone) follows the phone the record holds.
-- Answers {'ok', [need ids whose pending offers were withdrawn because the volunteer went off duty]},
-- or {'exists'} (create of a known id), or {'no_volunteer'} (update of an unknown id).
local a = cjson.decode(ARGV[2])
local id, now_iso, now_epoch, reason = a.volunteer_id, a.now_iso, a.now_epoch, a.withdraw_reason
local key = vol_key(id)
local exists = redis.call('EXISTS', key) == 1
if a.create and exists then return refuse('exists') end
if not a.create and not exists then return refuse('no_volunteer') end
local was_on = redis.call('HGET', key, 'on_duty')
local old_phone = redis.call('HGET', key, 'phone')
set_fields(key, a.fields)
local v = redis.call('HMGET', key, 'lat', 'lon', 'on_duty', 'phone')
if old_phone and old_phone ~= v[4] then redis.call('SREM', P .. 'vols:phone:' .. old_phone, id) end
if v[4] then redis.call('SADD', P .. 'vols:phone:' .. v[4], id) end
if a.create then redis.call('RPUSH', P .. 'vols', id) end
if a.create and a.fields.drill == '1' then redis.call('SADD', P .. 'drills:vols', id) end
redis.call('GEOADD', P .. 'vols:geo', v[2], v[1], id)
if v[3] == '1' and was_on ~= '1' then redis.call('HSET', key, 'idle_since', now_epoch) end
local touched = {}
if v[3] ~= '1' then
  local offers = redis.call('ZRANGE', vol_key(id) .. ':offers', 0, -1)
  for _, oid in ipairs(offers) do
    local o = redis.call('HMGET', offer_key(oid), 'status', 'need_id')
    if o[1] == OFFER.pending then
      end_offer(oid, OFFER.withdrawn, now_iso, now_epoch, reason)
      push_event(o[2], cjson.encode({at = now_iso, type = EVENT.offer_withdrawn, actor = 'volunteer:' .. id,
        detail = {offer_id = oid, volunteer_id = id, reason = reason}}))
      back_to_matching_if_empty(o[2], now_iso)
      table.insert(touched, o[2])
    end
  end
end
sync_avail(id, true)
return ok(touched)
