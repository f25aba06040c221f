-- create_delivery.lua: record a planned notification delivery unless it exists already.
-- KEYS[1]: the delivery hash; KEYS[2]: the need's deliveries (sorted set)
-- ARGV[1]: key prefix (unused); ARGV[2]: JSON {delivery_id, score, fields: {name: value}}
-- Answers {'ok'} when this call created it, or {'exists'}.
local a = cjson.decode(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 1 then return refuse('exists') end
set_fields(KEYS[1], a.fields)
redis.call('ZADD', KEYS[2], a.score, a.delivery_id)
return ok()
