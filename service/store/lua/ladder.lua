-- ladder.lua: one need's escalation ladder, one atomic step at a time: start it, climb a tier, acknowledge.
-- Each tier told is an event on the need's timeline and an announcement in the outbox in the same step, so
-- two sweepers racing never tell a tier twice and a crash never loses a step.
-- KEYS: none; built from the prefix: ladder:<need>, ladders:due, need:<need>, need:<need>:events,
--   ackcode:<code>, backlog:outbox, backlog:armed:notify, stats:escalation_steps, stats:escalation_acks
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {mode, need_id, now_iso, now_epoch, ...}
--   mode 'start': {escalation (the need's count of escalations), episode, code, code_ttl, grid, priority, tiers}
--   mode 'step':  {tiers}
--   mode 'ack':   {actor}
--   tiers: [{name, kind ('captain'|'dispatchers'|'channels'), seconds, volunteer_id, skip, note}], the need's
--   ladder as it stands now: `skip` says why a tier is passed over ('' to tell it), `note` is put on
--   the timeline beside a tier told
-- Answers ok(JSON): start and step {outcome = 'notified' (tier, due, arm_notify) | 'ended' (reason)};
--   ack {outcome = 'acknowledged' | 'already', acked_by, acked_at, tier}.
--   Refusals: no_need, need_status (detail: the need's status), exists (started already for this
--   escalation), busy (the code is taken), no_ladder, ladder_status (detail: its status), not_due.
local a = cjson.decode(ARGV[2])
local lkey = P .. 'ladder:' .. a.need_id
local nkey = need_key(a.need_id)
local due_key = P .. 'ladders:due'
local TOPICS = {captain = 'escalated_captain', dispatchers = 'escalated', channels = 'escalated_tier'}

local function event(kind, detail, actor)
  push_event(a.need_id, cjson.encode({at = a.now_iso, type = kind, actor = actor or 'system', detail = detail}))
end

local function finish(reason)
  redis.call('HSET', lkey, 'status', 'ended', 'ended_at', a.now_iso, 'ended_reason', reason)
  redis.call('ZREM', due_key, a.need_id)
  event(EVENT.escalation_ladder_ended, {reason = reason})
  return ok(cjson.encode({outcome = 'ended', reason = reason}))
end

-- Tell the tier at `step` (0-based), passing over those to skip; past the top the ladder ends.
local function climb(step)
  local tiers = a.tiers
  while step < #tiers do
    local t = tiers[step + 1]
    if t.skip ~= '' then
      event(EVENT.escalation_step, {tier = t.name, step = step, outcome = 'skipped', reason = t.skip})
      redis.call('HINCRBY', P .. 'stats:escalation_steps', t.name .. '|skipped', 1)
      step = step + 1
    else
      local due = tonumber(a.now_epoch) + tonumber(t.seconds)
      local detail = {tier = t.name, step = step, outcome = 'notified', ack_by = iso(due)}
      if t.volunteer_id ~= '' then detail.volunteer_id = t.volunteer_id end
      if t.note and t.note ~= '' then detail.note = t.note end
      event(EVENT.escalation_step, detail)
      redis.call('HINCRBY', P .. 'stats:escalation_steps', t.name .. '|notified', 1)
      local episode = redis.call('HGET', lkey, 'episode')
      redis.call('RPUSH', P .. 'backlog:outbox', cjson.encode({topic = TOPICS[t.kind], need_id = a.need_id,
        volunteer_id = t.volunteer_id, offer_id = '', reason = t.kind == 'channels' and t.name or '',
        event_id = episode .. '-' .. step}))
      local armed = redis.call('SET', P .. 'backlog:armed:notify', '1', 'NX', 'EX', 120) ~= false
      redis.call('HSET', lkey, 'step', step + 1, 'due', string.format('%.3f', due), 'tier', t.name, 'told_at', a.now_iso)
      if t.kind == 'captain' then redis.call('HSET', lkey, 'captain_id', t.volunteer_id) end
      redis.call('ZADD', due_key, due, a.need_id)
      return ok(cjson.encode({outcome = 'notified', tier = t.name, due = due, arm_notify = armed}))
    end
  end
  redis.call('HSET', lkey, 'step', step)
  if redis.call('HEXISTS', lkey, 'tier') == 1 then return finish('nobody acknowledged, up to the top tier') end
  return finish('no tier could be told')
end

local n = redis.call('HMGET', nkey, 'status', 'escalations')
if a.mode == 'start' then
  if not n[1] then return refuse('no_need') end
  if n[1] ~= NEED.escalated or n[2] ~= a.escalation then return refuse('need_status', n[1]) end
  if redis.call('HGET', lkey, 'escalation') == a.escalation then return refuse('exists') end
  if not redis.call('SET', P .. 'ackcode:' .. a.code, a.need_id, 'NX', 'EX', a.code_ttl) then return refuse('busy') end
  local old = redis.call('HGET', lkey, 'code')
  if old and redis.call('GET', P .. 'ackcode:' .. old) == a.need_id then redis.call('DEL', P .. 'ackcode:' .. old) end
  redis.call('DEL', lkey)
  redis.call('HSET', lkey, 'need_id', a.need_id, 'escalation', a.escalation, 'episode', a.episode,
    'code', a.code, 'grid', a.grid, 'priority', a.priority, 'status', 'running', 'step', 0, 'started_at', a.now_iso)
  return climb(0)
end

local h = redis.call('HMGET', lkey, 'status', 'step', 'due', 'acked_by', 'acked_at', 'tier')
if not h[1] then return refuse('no_ladder') end

if a.mode == 'step' then
  if h[1] ~= 'running' then return refuse('ladder_status', h[1]) end
  if tonumber(h[3] or '0') > tonumber(a.now_epoch) then return refuse('not_due') end
  if n[1] ~= NEED.escalated then return finish('the need is ' .. (n[1] or 'gone')) end
  return climb(tonumber(h[2]))
end

-- ack: by a captain of the grid or a dispatcher; again: the first acknowledgement
if h[1] == 'acknowledged' then
  return ok(cjson.encode({outcome = 'already', acked_by = h[4], acked_at = h[5], tier = h[6] or ''}))
end
if n[1] ~= NEED.escalated then return refuse('need_status', n[1] or 'gone') end
redis.call('HSET', lkey, 'status', 'acknowledged', 'acked_by', a.actor, 'acked_at', a.now_iso)
redis.call('ZREM', due_key, a.need_id)
event(EVENT.escalation_acknowledged, {tier = h[6] or ''}, a.actor)
redis.call('HINCRBY', P .. 'stats:escalation_acks', h[6] or 'none', 1)
return ok(cjson.encode({outcome = 'acknowledged', acked_by = a.actor, acked_at = a.now_iso, tier = h[6] or ''}))
