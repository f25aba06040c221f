-- accept.lua: a volunteer accepts a pending offer for one of the need's roles. Once the role has all the
-- volunteers it asks for, its other pending offers are withdrawn; once every role has, the need is
-- assigned and its committed deadline set.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {offer_id, now_iso, now_epoch, committed_iso, committed_epoch,
--                event (JSON), assigned_event (JSON)}
-- The volunteers whose offers were withdrawn are told it was taken (the outbox).
-- Answers {'ok', '' | '+notify' when offers were withdrawn and the notify drain must be enqueued |
-- 'assigned' when the need became assigned | 'assigned+notify' both}, or a refusal: no_offer,
-- offer_status (detail: the offer's status), need_status (detail: the need's status),
-- role_filled (detail: the role's index; its places were taken meanwhile).
local a = cjson.decode(ARGV[2])
local offer_id, now_iso, now_epoch = a.offer_id, a.now_iso, tonumber(a.now_epoch)
local okey = offer_key(offer_id)
local o = redis.call('HMGET', okey, 'status', 'need_id', 'expires_epoch', 'role', 'volunteer_id')
if not o[1] then return refuse('no_offer') end
if o[1] ~= OFFER.pending then return refuse('offer_status', o[1]) end
if tonumber(o[3]) <= now_epoch then return refuse('offer_status', OFFER.expired) end
local need_id = o[2]
local nkey = need_key(need_id)
local status = redis.call('HGET', nkey, 'status')
if not ACCEPTS_OFFERS[status] then return refuse('need_status', status) end
local roles = need_roles(nkey)
local r = tonumber(o[4] or '0') or 0
local role = roles[r + 1]
if not role then return refuse('role_filled', tostring(r)) end
local _, filled = role_counts(nkey, roles, r)
if filled >= role.count then return refuse('role_filled', tostring(r)) end
redis.call('HSET', okey, 'status', OFFER.accepted, 'decided_at', now_iso)
redis.call('ZREM', P .. 'offers:pending', offer_id)
push_event(need_id, a.event)
redis.call('HINCRBY', nkey, 'accepted', 1)
count_role(nkey, r, 'accepted', 1)
count_task(o[5], now_epoch)
local _, accepted = role_counts(nkey, roles, r)
if accepted < role.count then return ok() end
-- this role is staffed; the need is once every role is
local all_filled = assign_if_staffed(need_id, roles, now_iso, a.committed_iso, a.committed_epoch)
if all_filled then push_event(need_id, a.assigned_event) end
-- offers still pending for the role (for every role, once the need is staffed) are withdrawn
local arm_notify = withdraw_taken(need_id, (not all_filled) and r or nil, now_iso, now_epoch)
local detail = all_filled and 'assigned' or ''
if arm_notify then detail = detail .. '+notify' end
return ok(detail)
