-- accept.lua: a volunteer accepts a pending offer; once enough have accepted, the need is
-- assigned, its committed deadline set and its other pending offers withdrawn.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {offer_id, now_iso, now_epoch, committed_iso, committed_epoch,
--                event (JSON), assigned_event (JSON)}
-- The volunteers whose offers were withdrawn are told it was taken (the outbox).
-- Answers {'ok', '' | 'assigned' when the need became assigned | 'assigned+notify' when, besides,
-- the notify drain must be enqueued}, or a refusal: no_offer,
-- offer_status (detail: the offer's status), need_status (detail: the need's status).
local a = cjson.decode(ARGV[2])
local offer_id, now_iso, now_epoch = a.offer_id, a.now_iso, tonumber(a.now_epoch)
local okey = offer_key(offer_id)
local o = redis.call('HMGET', okey, 'status', 'need_id', 'expires_epoch')
if not o[1] then return refuse('no_offer') end
if o[1] ~= OFFER.pending then return refuse('offer_status', o[1]) end
if tonumber(o[3]) <= now_epoch then return refuse('offer_status', OFFER.expired) end
local nkey = need_key(o[2])
local n = redis.call('HMGET', nkey, 'status', 'volunteers_needed')
if not ACCEPTS_OFFERS[n[1]] then return refuse('need_status', n[1]) end
redis.call('HSET', okey, 'status', OFFER.accepted, 'decided_at', now_iso)
redis.call('ZREM', P .. 'offers:pending', offer_id)
push_event(o[2], a.event)
local accepted = redis.call('HINCRBY', nkey, 'accepted', 1)
count_task(redis.call('HGET', okey, 'volunteer_id'), now_epoch)
if accepted < tonumber(n[2]) then return ok() end
set_status(o[2], NEED.assigned, now_iso)
redis.call('HSET', nkey, 'committed_deadline', a.committed_iso)
redis.call('ZADD', P .. 'needs:due', a.committed_epoch, o[2])
push_event(o[2], a.assigned_event)
-- the need is fully staffed: withdraw offers still pending
local ids = redis.call('ZRANGE', nkey .. ':offers', 0, -1)
local arm_notify = false
for _, id in ipairs(ids) do
  local other = redis.call('HMGET', offer_key(id), 'status', 'volunteer_id')
  if other[1] == OFFER.pending then
    end_offer(id, OFFER.withdrawn, now_iso, now_epoch, 'taken by another volunteer')
    push_event(o[2], cjson.encode({at = now_iso, type = EVENT.offer_withdrawn, actor = 'system',
      detail = {offer_id = id, volunteer_id = other[2], reason = 'taken by another volunteer'}}))
    if announce('offer_taken', o[2], other[2], '', 'taken-' .. id) then arm_notify = true end
  end
end
if arm_notify then return ok('assigned+notify') end
return ok('assigned')
