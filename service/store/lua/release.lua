-- release.lua: end a pending offer (declined, expired or withdrawn) and free the volunteer's capacity.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {offer_id, status, now_iso, now_epoch, reason, event (JSON), only_if_due (bool)}
-- Answers {'ok'}, or a refusal: no_offer, offer_status (detail: the offer's status), not_due.
local a = cjson.decode(ARGV[2])
local offer_id, now_iso, now_epoch = a.offer_id, a.now_iso, tonumber(a.now_epoch)
local o = redis.call('HMGET', offer_key(offer_id), 'status', 'need_id', 'expires_epoch')
if not o[1] then return refuse('no_offer') end
if o[1] ~= OFFER.pending then return refuse('offer_status', o[1]) end
if a.only_if_due and tonumber(o[3]) > now_epoch then return refuse('not_due') end
end_offer(offer_id, a.status, now_iso, now_epoch, a.reason)
-- a need whose offer went unanswered is offered to several volunteers at once from now on
if a.status == OFFER.expired then redis.call('HINCRBY', need_key(o[2]), 'expired_offers', 1) end
push_event(o[2], a.event)
back_to_matching_if_empty(o[2], now_iso)
return ok()
