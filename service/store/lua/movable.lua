-- movable.lua: pending offers of ordinary needs that could be moved so that another need may have
-- their volunteer: the volunteers within within_km of the need who hold such an offer. Reads only.
-- Movable: the other need is ordinary, waits for one volunteer in one role, has nobody accepted
-- yet, and is offered to one volunteer at a time (no parallel offers, no offer expired unanswered).
-- The volunteer must be on duty, hold every skill the need asks for and not have been offered it.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {need_id, within_km, parallel: {priority: K}, count: most holders to look at}
-- Answers {'ok', JSON [{volunteer_id, km (from the need, as GEOSEARCH measures), free (capacity - load),
--   offer_id, need_id (the other need), offer_km (the offer's distance)}]} nearest holder first; [] for a
--   need that does not exist.
local a = cjson.decode(ARGV[2])
local nkey = need_key(a.need_id)
local n = redis.call('HMGET', nkey, 'lat', 'lon', 'skills')
if not n[1] then return ok('[]') end
local tried = nkey .. ':tried'
local out = {}
local hits = redis.call('GEOSEARCH', P .. 'volunteers:holding_ordinary', 'FROMLONLAT', n[2], n[1], 'BYRADIUS',
  tonumber(a.within_km), 'km', 'ASC', 'COUNT', tonumber(a.count), 'WITHDIST')
for _, hit in ipairs(hits) do
  local vid = hit[1]
  local v = redis.call('HMGET', vol_key(vid), 'on_duty', 'skills', 'load', 'capacity')
  local fits = v[1] == '1' and redis.call('SISMEMBER', tried, vid) == 0
  for s in string.gmatch(n[3] or '', '[^,]+') do
    if fits and not in_csv(v[2] or '', s) then fits = false end
  end
  if fits then
    for _, oid in ipairs(redis.call('ZREVRANGE', vol_key(vid) .. ':offers', 0, 9)) do
      local o = redis.call('HMGET', offer_key(oid), 'status', 'need_id', 'distance_km')
      if o[1] == OFFER.pending and o[2] ~= a.need_id then
        local okey = need_key(o[2])
        local other = redis.call('HMGET', okey, 'status', 'priority', 'vulnerability', 'active', 'accepted',
          'expired_offers')
        local roles = need_roles(okey)
        if other[1] == NEED.offered and not is_urgent(other[2], other[3]) and #roles == 1 and roles[1].count == 1
          and tonumber(other[4] or '0') == 1 and tonumber(other[5] or '0') == 0
          and (tonumber(other[6] or '0') or 0) == 0 and (tonumber(a.parallel[other[2]] or 1) or 1) == 1 then
          table.insert(out, {volunteer_id = vid, km = tonumber(hit[2]), free = tonumber(v[4]) - tonumber(v[3]),
            offer_id = oid, need_id = o[2], offer_km = tonumber(o[3] or '0') or 0})
        end
      end
    end
  end
end
if #out == 0 then return ok('[]') end
return ok(cjson.encode(out))
