-- transition.lua: move a need to a new status if its current status allows it; optionally end
-- its offers, forget who was tried, and set fields, all in one step.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {need_id, allowed (list of statuses), to, now_iso, now_epoch, event (JSON or ''),
--                release ('none' | 'withdraw': end every live offer | 'complete': accepted
--                offers complete, pending ones are withdrawn), release_reason,
--                clear_tried (bool), unless_staffed (bool), fields: {name: value ('' deletes)},
--                day, week (the local day and ISO week of now, for the reports: a need done now counts
--                its volunteers' service there)}
-- Answers {'ok', the status before}, or a refusal: no_need, need_status (detail: the status),
-- staffed (unless_staffed and every role of the need has all the offers it asks for).
local a = cjson.decode(ARGV[2])
local need_id, now_iso, now_epoch = a.need_id, a.now_iso, a.now_epoch
local nkey = need_key(need_id)
local current = redis.call('HGET', nkey, 'status')
if not current then return refuse('no_need') end
local allowed = false
for _, s in ipairs(a.allowed) do if s == current then allowed = true end end
if not allowed then return refuse('need_status', current) end
if a.unless_staffed and staffed(nkey) then return refuse('staffed', current) end
if a.release == 'withdraw' then end_need_offers(need_id, OFFER.withdrawn, now_iso, now_epoch, a.release_reason) end
if a.release == 'complete' then count_service(need_id, a.day, a.week, tonumber(now_epoch)) end
if a.release == 'complete' then end_need_offers(need_id, OFFER.completed, now_iso, now_epoch, '') end
if a.clear_tried then redis.call('DEL', nkey .. ':tried') end
set_fields(nkey, a.fields)
if not IN_PROGRESS[a.to] then redis.call('ZREM', P .. 'needs:due', need_id) end
set_status(need_id, a.to, now_iso)
redis.call('HSET', nkey, 'updated_at', now_iso)
push_event(need_id, a.event)
return ok(current)
