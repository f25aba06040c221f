-- next_expiry.lua: arm the expiry timer for the earliest offer still pending.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {unless_armed_since: leave a timer armed for this epoch or later as it is}
-- Answers {'ok', the epoch to schedule the expiry job at, or '' when nothing is to be scheduled}.
local a = cjson.decode(ARGV[2])
local key = P .. 'backlog:armed:expiry'
local armed = redis.call('GET', key)
if armed and tonumber(armed) >= tonumber(a.unless_armed_since) then return ok('') end
local first = redis.call('ZRANGE', P .. 'offers:pending', 0, 0, 'WITHSCORES')
if #first == 0 then
  redis.call('DEL', key)
  return ok('')
end
redis.call('SET', key, first[2])
return ok(first[2])
