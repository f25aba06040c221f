-- incident.lua: put needs in incidents, in one step, so a need is never in two and two needs
-- arriving at once never open two incidents.
-- 'place' (a need just taken in): it joins the nearest open incident of its family that reaches
-- it (growing its radius up to its reach); else, when with it there are `count` recent needs of
-- its family within `radius_km` of it, not in an incident and not resolved, they open one: the
-- centre is their mean, the radius max(radius_km, furthest member + margin_km), the reach
-- max(2 * radius_km, radius); else it waits among the recent needs for `window_seconds`.
-- 'declare' (a dispatcher's incident): it opens at the given centre and radius, and each given
-- need not resolved and not in an incident joins it.
-- KEYS[1]: the family's recent needs not in an incident (GEO set)
-- KEYS[2]: the same needs by arrival (sorted set, epoch seconds)
-- KEYS[3]: the family's open incidents' centres (GEO set)
-- KEYS[4]: every incident (sorted set by id); KEYS[5]: every incident's centre (GEO set)
-- KEYS[6]: the open incidents (sorted set by id)
-- ARGV[1]: key prefix (incident and need records are built from it)
-- ARGV[2]: JSON {mode: 'place' | 'declare', incident_id (used if one opens), family, now_iso,
--   now_epoch; place: need_id, lat, lon, count, radius_km, window_seconds, margin_km, search_km
--   (how far to look for open incidents: the largest reach any may have); declare: lat, lon,
--   radius_km, note, declared_by, need_ids}
-- Answers {'ok', JSON {outcome: 'joined' | 'opened' | 'waiting', incident_id, need_ids (the needs
-- that joined now)}}, or refuses no_need (place: the need does not exist).
local a = cjson.decode(ARGV[2])
local now_iso, now_epoch = a.now_iso, tonumber(a.now_epoch)
local function incident_key(id) return P .. 'incident:' .. id end

local EARTH_M = 6372797.560856 -- as Redis's GEO commands measure
local function km_between(lat1, lon1, lat2, lon2)
  local r = math.pi / 180
  local s1 = math.sin((lat2 - lat1) * r / 2)
  local s2 = math.sin((lon2 - lon1) * r / 2)
  local h = s1 * s1 + math.cos(lat1 * r) * math.cos(lat2 * r) * s2 * s2
  return 2 * EARTH_M * math.asin(math.sqrt(math.min(1, h))) / 1000
end

local function answer(outcome, incident_id, need_ids)
  return ok(cjson.encode({outcome = outcome, incident_id = incident_id or '', need_ids = need_ids or {}}))
end

local function forget_recent(need_id)
  redis.call('ZREM', KEYS[1], need_id)
  redis.call('ZREM', KEYS[2], need_id)
end

local function join(incident_id, need_id)
  redis.call('HSET', need_key(need_id), 'incident_id', incident_id)
  redis.call('ZADD', incident_key(incident_id) .. ':needs', now_epoch, need_id)
  push_event(need_id, cjson.encode({at = now_iso, type = EVENT.incident_joined, actor = 'system',
    detail = {incident_id = incident_id}}))
  forget_recent(need_id)
end

local function open(lat, lon, radius, reach, note, declared_by)
  local id = a.incident_id
  redis.call('HSET', incident_key(id), 'id', id, 'family', a.family, 'status', INCIDENT.open,
    'lat', string.format('%.7f', lat), 'lon', string.format('%.7f', lon),
    'radius_km', string.format('%.3f', radius), 'reach_km', string.format('%.3f', reach),
    'opened_at', now_iso, 'opened_epoch', a.now_epoch)
  if note and note ~= '' then redis.call('HSET', incident_key(id), 'note', note) end
  if declared_by and declared_by ~= '' then redis.call('HSET', incident_key(id), 'declared_by', declared_by) end
  redis.call('GEOADD', KEYS[3], lon, lat, id)
  redis.call('ZADD', KEYS[4], 0, id)
  redis.call('GEOADD', KEYS[5], lon, lat, id)
  redis.call('ZADD', KEYS[6], 0, id)
  return id
end

local function unresolved_free(need_id)
  local n = redis.call('HMGET', need_key(need_id), 'status', 'incident_id')
  return n[1] and not RESOLVED[n[1]] and (not n[2] or n[2] == '')
end

if a.mode == 'declare' then
  local id = open(tonumber(a.lat), tonumber(a.lon), tonumber(a.radius_km), tonumber(a.radius_km), a.note, a.declared_by)
  local joined = {}
  for _, need_id in ipairs(a.need_ids) do
    if unresolved_free(need_id) then
      join(id, need_id)
      table.insert(joined, need_id)
    end
  end
  return answer('opened', id, joined)
end

local need_id, lat, lon = a.need_id, tonumber(a.lat), tonumber(a.lon)
local current = redis.call('HMGET', need_key(need_id), 'status', 'incident_id')
if not current[1] then return refuse('no_need') end
if current[2] and current[2] ~= '' then return answer('joined', current[2], {}) end

-- needs older than the family's window no longer count towards a new incident
for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now_epoch - tonumber(a.window_seconds)))) do
  forget_recent(old)
end

-- the nearest open incident that reaches the need takes it
local open_near = redis.call('GEOSEARCH', KEYS[3], 'FROMLONLAT', lon, lat, 'BYRADIUS', a.search_km, 'km', 'ASC', 'WITHDIST')
for _, row in ipairs(open_near) do
  local id, dist = row[1], tonumber(row[2])
  local i = redis.call('HMGET', incident_key(id), 'radius_km', 'reach_km')
  local radius, reach = tonumber(i[1]), tonumber(i[2])
  if radius and dist <= reach then
    local grown = math.min(reach, dist + tonumber(a.margin_km))
    if grown > radius then redis.call('HSET', incident_key(id), 'radius_km', string.format('%.3f', grown)) end
    join(id, need_id)
    return answer('joined', id, {need_id})
  end
end

-- else: enough recent needs around it open one
redis.call('GEOADD', KEYS[1], lon, lat, need_id)
redis.call('ZADD', KEYS[2], now_epoch, need_id)
local members = {}
local sum_lat, sum_lon = 0, 0
for _, row in ipairs(redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', lon, lat, 'BYRADIUS', a.radius_km, 'km', 'ASC', 'WITHCOORD')) do
  local id = row[1]
  if unresolved_free(id) then
    local mlon, mlat = tonumber(row[2][1]), tonumber(row[2][2])
    table.insert(members, {id, mlat, mlon})
    sum_lat, sum_lon = sum_lat + mlat, sum_lon + mlon
  else
    forget_recent(id)
  end
end
if #members < tonumber(a.count) then return answer('waiting') end
local c_lat, c_lon = sum_lat / #members, sum_lon / #members
local furthest = 0
for _, m in ipairs(members) do furthest = math.max(furthest, km_between(c_lat, c_lon, m[2], m[3])) end
local rule_km = tonumber(a.radius_km)
local radius = math.max(rule_km, furthest + tonumber(a.margin_km))
local id = open(c_lat, c_lon, radius, math.max(2 * rule_km, radius), '', '')
local joined = {}
for _, m in ipairs(members) do
  join(id, m[1])
  table.insert(joined, m[1])
end
table.sort(joined)
return answer('opened', id, joined)
