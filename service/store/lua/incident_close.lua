-- incident_close.lua: close an open incident; it no longer takes needs.
-- KEYS[1]: the family's open incidents' centres (GEO set); KEYS[2]: the open incidents;
-- KEYS[3]: the closed incidents (sorted sets by id)
-- ARGV[1]: key prefix; ARGV[2]: JSON {incident_id, now_iso}
-- Answers {'ok'}, or a refusal: no_incident, incident_status (detail: the status).
local a = cjson.decode(ARGV[2])
local key = P .. 'incident:' .. a.incident_id
local status = redis.call('HGET', key, 'status')
if not status then return refuse('no_incident') end
if status ~= INCIDENT.open then return refuse('incident_status', status) end
redis.call('HSET', key, 'status', INCIDENT.closed, 'closed_at', a.now_iso)
redis.call('ZREM', KEYS[1], a.incident_id)
redis.call('ZREM', KEYS[2], a.incident_id)
redis.call('ZADD', KEYS[3], 0, a.incident_id)
return ok()
