-- lib.lua: helpers shared by Aidline's scripts; loaded in front of each script, after the
-- constants generated from service.models and service.lifecycle (NEED, OFFER, EVENT, SKILLS, and
-- the status sets MATCHABLE, ACCEPTS_OFFERS, IN_PROGRESS).
-- Every script takes the key prefix as ARGV[1]; keys are built from it because Aidline runs
-- against one Redis, not a cluster. Every script answers {outcome, detail}: outcome 'ok' or a
-- refusal named in service/store/errors.py.

local P = ARGV[1]
local function need_key(id) return P .. 'need:' .. id end
local function vol_key(id) return P .. 'vol:' .. id end
local function offer_key(id) return P .. 'offer:' .. id end

-- A UTC time as service.clock.iso writes it (milliseconds): 2026-11-29T12:00:00.000Z
local function iso(epoch)
  local t = math.floor(epoch)
  local days = math.floor(t / 86400)
  local rest = t - days * 86400
  -- days since 1970-01-01 to a civil date (H. Hinnant's algorithm)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  -- milliseconds truncated, as Python's isoformat(timespec='milliseconds'); half a microsecond absorbs float error
  local ms = math.min(math.floor((epoch - t) * 1000 + 0.0005), 999)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', year, month, day, math.floor(rest / 3600),
    math.floor(rest % 3600 / 60), rest % 60, ms)
end

local function ok(detail) return {'ok', detail or ''} end
local function refuse(reason, detail) return {reason, detail or ''} end

local function push_event(need_id, event_json)
  if event_json and event_json ~= '' then
    redis.call('RPUSH', need_key(need_id) .. ':events', event_json)
  end
end

local function set_fields(key, fields)
  for name, value in pairs(fields) do
    if value == '' then redis.call('HDEL', key, name) else redis.call('HSET', key, name, value) end
  end
end

-- Urgent needs go first and may take an ordinary need's pending offer (service.models.Need.urgent).
local function is_urgent(priority, vulnerability_csv)
  if URGENT_PRIORITY[priority] then return true end
  for v in string.gmatch(vulnerability_csv or '', '[^,]+') do
    if URGENT_VULNERABILITY[v] then return true end
  end
  return false
end

-- Reports (service/store/rollups.py): figures kept as events happen, per local day, ISO week and month
-- (hashes 'rollup:d:<day>', 'rollup:w:<week>', 'rollup:m:<YYYY-MM>'), each field '<grid>|<kind>|<figure>';
-- volunteers' service likewise ('rollup:vd:', 'rollup:vw:', 'rollup:vm:'), each field '<volunteer id>|<figure>'.
-- A need counts in the day and week it was received (its 'report_day', 'report_week' and 'report_cell'
-- fields, written when it is stored; drill needs have none and are never counted). What a need counts
-- for now is kept on it ('rc:*' fields), so every status change adds exactly the difference.
local ROLLUP_PER_DOUBLING = 4

-- Epoch seconds of a UTC time as service.clock.iso writes it (the inverse of iso above).
local function iso_epoch(s)
  local y, mo, d, h, mi, sec, ms = string.match(s, '^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.?(%d*)')
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = mo > 2 and mo - 3 or mo + 9
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  local frac = (ms ~= '' and tonumber(ms) / 10 ^ #ms) or 0
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) + frac
end

-- The histogram bucket of a duration: 0 below a second, then ROLLUP_PER_DOUBLING buckets per doubling
-- (service.store.rollups.duration_bucket computes the same).
local function duration_bucket(seconds)
  if seconds < 1 then return 0 end
  return math.floor(ROLLUP_PER_DOUBLING * math.log(seconds) / math.log(2)) + 1
end

local function rollup_add(day, week, field, n)
  if n == 0 then return end
  redis.call('HINCRBY', P .. 'rollup:d:' .. day, field, n)
  redis.call('HINCRBY', P .. 'rollup:w:' .. week, field, n)
  redis.call('HINCRBY', P .. 'rollup:m:' .. string.sub(day, 1, 7), field, n)
end

-- One visit of a household at an attention level became due, done or overdue (status), in its grid.
local function count_visit(day, week, grid, level, status)
  rollup_add(day, week, (grid or '') .. '|companionship_visit|visits:' .. level .. ':' .. status, 1)
end

-- The need's status changed from old to new: count what this change adds to its rollup.
local function rollup_status(key, old, new, now_iso)
  local f = redis.call('HMGET', key, 'report_day', 'report_week', 'report_cell', 'created_epoch', 'done_at',
    'committed_deadline', 'rating', 'rc:resolved', 'rc:timed', 'rc:on_time', 'rc:rating')
  if not f[1] then return end
  local day, week, cell = f[1], f[2], f[3] .. '|'
  local function add(figure, n) rollup_add(day, week, cell .. figure, n) end
  local function first(flag) return redis.call('HSETNX', key, 'rc:' .. flag, '1') == 1 end
  local since = iso_epoch(now_iso) - (tonumber(f[4]) or 0)
  if (new == NEED.offered or new == NEED.assigned) and first('offered') then
    add('to_offer:' .. duration_bucket(since), 1)
  end
  if new == NEED.assigned and first('accepted') then add('to_accept:' .. duration_bucket(since), 1) end
  if new == NEED.done and first('done') then add('to_done:' .. duration_bucket(since), 1) end
  if new == NEED.escalated and first('escalated') then add('escalated', 1) end
  if new == NEED.deferred and first('deferred') then add('deferred', 1) end
  if new == NEED.queued and old and first('reopened') then add('reopened', 1) end
  -- what the need counts for while it stays in its new status: resolved, done on time, its rating
  local resolved = new == NEED.done or new == NEED.closed
  local timed = resolved and f[5] and f[6] and true or false
  local now = {resolved = resolved and 1 or 0, timed = timed and 1 or 0, on_time = (timed and f[5] <= f[6]) and 1 or 0}
  local before = {resolved = tonumber(f[8]) or 0, timed = tonumber(f[9]) or 0, on_time = tonumber(f[10]) or 0}
  for _, name in ipairs({'resolved', 'timed', 'on_time'}) do
    if now[name] ~= before[name] then
      add(name, now[name] - before[name])
      redis.call('HSET', key, 'rc:' .. name, now[name])
    end
  end
  local rating = resolved and tonumber(f[7]) or nil
  local counted = tonumber(f[11])
  if rating ~= counted then
    for sign, r in pairs({[-1] = counted, [1] = rating}) do
      if r then
        add('rated', sign)
        add('rating_sum', sign * r)
        if r >= 4 then add('rated_good', sign) end
      end
    end
    if rating then redis.call('HSET', key, 'rc:rating', rating) else redis.call('HDEL', key, 'rc:rating') end
  end
end

-- known_old: the status the caller knows the need has (saves reading it)
local function set_status(need_id, new_status, now_iso, known_old)
  local key = need_key(need_id)
  local old = known_old or redis.call('HGET', key, 'status')
  if old == new_status then return old end
  if old then redis.call('ZREM', P .. 'needs:status:' .. old, need_id) end
  redis.call('ZADD', P .. 'needs:status:' .. new_status, 0, need_id)
  redis.call('HSET', key, 'status', new_status, 'updated_at', now_iso, 'status_at', now_iso)
  rollup_status(key, old, new_status, now_iso)
  if new_status == NEED.escalated then
    redis.call('HINCRBY', key, 'escalations', 1)  -- names this escalation (its ladder: ladder.lua)
    local pos = redis.call('HMGET', key, 'lon', 'lat', 'priority', 'vulnerability')
    redis.call('GEOADD', P .. 'needs:escalated:geo', pos[1], pos[2], need_id)
    -- urgent ones also where ordinary needs look before taking a volunteer (match.lua)
    if is_urgent(pos[3], pos[4]) then redis.call('GEOADD', P .. 'needs:escalated_urgent:geo', pos[1], pos[2], need_id) end
  elseif old == NEED.escalated then
    redis.call('ZREM', P .. 'needs:escalated:geo', need_id)
    redis.call('ZREM', P .. 'needs:escalated_urgent:geo', need_id)
  end
  return old
end

local function in_csv(skills_csv, skill)
  return string.find(',' .. skills_csv .. ',', ',' .. skill .. ',', 1, true) ~= nil
end

-- The GEO set of available volunteers with two skills (besides 'general', which everyone has):
-- needs that ask for two skills search it instead of reading and rejecting one by one.
local function pair_key(a, b)
  if b < a then a, b = b, a end
  return P .. 'avail:' .. a .. '+' .. b
end

local function skill_pairs(skills_csv)
  local own = {}
  for s in string.gmatch(skills_csv, '[^,]+') do
    if s ~= 'general' then table.insert(own, s) end
  end
  local keys = {}
  for i = 1, #own do
    for j = i + 1, #own do keys[pair_key(own[i], own[j])] = true end
  end
  return keys
end

-- Put the volunteer in, or take them out of, the sets of available volunteers: one per skill
-- and one per pair of skills. A volunteer is only ever in the sets of their own skills, so
-- those are all that need touching; every_skill also clears the others (after the skills
-- themselves changed).
local function sync_avail(vol_id, every_skill)
  local v = redis.call('HMGET', vol_key(vol_id), 'on_duty', 'load', 'capacity', 'skills', 'lat', 'lon')
  local available = v[1] == '1' and tonumber(v[2]) < tonumber(v[3])
  local skills = v[4] or ''
  local own_pairs = skill_pairs(skills)
  if every_skill then
    for i, s in ipairs(SKILLS) do
      if not in_csv(skills, s) then redis.call('ZREM', P .. 'avail:' .. s, vol_id) end
      for j = i + 1, #SKILLS do
        local key = pair_key(s, SKILLS[j])
        if not own_pairs[key] then redis.call('ZREM', key, vol_id) end
      end
    end
  end
  for s in string.gmatch(skills, '[^,]+') do
    local key = P .. 'avail:' .. s
    if available then redis.call('GEOADD', key, v[6], v[5], vol_id) else redis.call('ZREM', key, vol_id) end
  end
  for key in pairs(own_pairs) do
    if available then redis.call('GEOADD', key, v[6], v[5], vol_id) else redis.call('ZREM', key, vol_id) end
  end
  return available
end

-- One more unit of the volunteer's capacity taken: they leave every set once they are full
-- (still available, they stay where they are: nothing to write).
-- (capacity and skills_csv: the volunteer's, when the caller has read them)
local function take_capacity(vol_id, capacity, skills_csv)
  local load = redis.call('HINCRBY', vol_key(vol_id), 'load', 1)
  local v = {capacity, skills_csv}
  if not capacity or not skills_csv then v = redis.call('HMGET', vol_key(vol_id), 'capacity', 'skills') end
  if load < tonumber(v[1]) then return end
  for s in string.gmatch(v[2] or '', '[^,]+') do redis.call('ZREM', P .. 'avail:' .. s, vol_id) end
  for key in pairs(skill_pairs(v[2] or '')) do redis.call('ZREM', key, vol_id) end
end

local function change_load(vol_id, delta, now_epoch)
  local key = vol_key(vol_id)
  if redis.call('EXISTS', key) == 0 then return end
  local load = redis.call('HINCRBY', key, 'load', delta)
  if load < 0 then redis.call('HSET', key, 'load', 0); load = 0 end
  if load == 0 and delta < 0 then redis.call('HSET', key, 'idle_since', now_epoch) end
  sync_avail(vol_id)
end

-- A need's roles: {skills = {...}, csv = 'a,b', count = n} each, in order; a need recorded without roles has
-- one, from its skills and volunteers_needed. (known: those three fields, when the caller has read them)
local function need_roles(nkey, known)
  local f = known or redis.call('HMGET', nkey, 'roles', 'skills', 'volunteers_needed')
  local roles = {}
  if f[1] and f[1] ~= '' then
    for i, role in ipairs(cjson.decode(f[1])) do
      local skills = {}
      for _, s in ipairs(role.skills) do table.insert(skills, s) end
      roles[i] = {skills = skills, csv = table.concat(skills, ','), count = tonumber(role.count)}
    end
  else
    local skills = {}
    for s in string.gmatch(f[2] or '', '[^,]+') do table.insert(skills, s) end
    roles[1] = {skills = skills, csv = f[2] or '', count = tonumber(f[3])}
  end
  return roles
end

-- Live (pending or accepted) and accepted offers of role r (0-based) of a need: counted per role as
-- 'role:<r>:active' and 'role:<r>:accepted', but a need with one role reads its totals (a need recorded
-- before roles has only those).
local function role_counts(nkey, roles, r)
  local n
  if #roles == 1 then n = redis.call('HMGET', nkey, 'active', 'accepted')
  else n = redis.call('HMGET', nkey, 'role:' .. r .. ':active', 'role:' .. r .. ':accepted') end
  return tonumber(n[1] or '0') or 0, tonumber(n[2] or '0') or 0
end

local function count_role(nkey, r, name, delta)
  return redis.call('HINCRBY', nkey, 'role:' .. r .. ':' .. name, delta)
end

-- Every role has as many live offers as volunteers it asks for.
local function staffed(nkey)
  local roles = need_roles(nkey)
  for r, role in ipairs(roles) do
    local active = role_counts(nkey, roles, r - 1)
    if active < role.count then return false end
  end
  return true
end

-- End one offer: a pending one gets new_status; an accepted one becomes completed when its
-- need is done, else withdrawn. Either way the volunteer's capacity is freed once.
local function end_offer(offer_id, new_status, now_iso, now_epoch, reason)
  local okey = offer_key(offer_id)
  local o = redis.call('HMGET', okey, 'status', 'volunteer_id', 'need_id', 'role')
  local status = o[1]
  if status ~= OFFER.pending and status ~= OFFER.accepted then return nil end
  local target = new_status
  if status == OFFER.accepted then
    if new_status == OFFER.completed then target = OFFER.completed else target = OFFER.withdrawn end
  elseif new_status == OFFER.completed then
    target = OFFER.withdrawn
  end
  redis.call('HSET', okey, 'status', target, 'decided_at', now_iso)
  if reason and reason ~= '' then redis.call('HSET', okey, 'reason', reason) end
  redis.call('ZREM', P .. 'offers:pending', offer_id)
  change_load(o[2], -1, now_epoch)
  local nkey = need_key(o[3])
  local r = tonumber(o[4] or '0') or 0
  redis.call('HINCRBY', nkey, 'active', -1)
  count_role(nkey, r, 'active', -1)
  if status == OFFER.accepted then
    redis.call('HINCRBY', nkey, 'accepted', -1)
    count_role(nkey, r, 'accepted', -1)
  end
  return status
end

-- End every live offer of a need: new_status is withdrawn (cancel, defer, reopen) or completed (done).
local function end_need_offers(need_id, new_status, now_iso, now_epoch, reason)
  local ids = redis.call('ZRANGE', need_key(need_id) .. ':offers', 0, -1)
  for _, id in ipairs(ids) do end_offer(id, new_status, now_iso, now_epoch, reason) end
end

-- A need left with no live offer while offered goes back to matching.
local function back_to_matching_if_empty(need_id, now_iso)
  local n = redis.call('HMGET', need_key(need_id), 'status', 'active')
  if n[1] == NEED.offered and tonumber(n[2]) == 0 then set_status(need_id, NEED.matching, now_iso) end
end

-- The backlogs (service/store/backlog.py): announcements wait in the outbox; a drain job is armed
-- by whoever sets its flag (that caller enqueues the job).
local function announce(topic, need_id, volunteer_id, offer_id, event_id)
  redis.call('RPUSH', P .. 'backlog:outbox', cjson.encode({topic = topic, need_id = need_id,
    volunteer_id = volunteer_id or '', offer_id = offer_id or '', reason = '', event_id = event_id or ''}))
  return redis.call('SET', P .. 'backlog:armed:notify', '1', 'NX', 'EX', 120) ~= false
end

-- Withdraw the need's offers still pending for role r (0-based; every role when r is nil) because the
-- role is filled, telling those volunteers it was taken; true when the notify drain must be enqueued.
-- Once every role has all the acceptances it asks for, the need is assigned with its committed
-- deadline (and counted among the needs due); true when it is.
local function assign_if_staffed(need_id, roles, now_iso, committed_iso, committed_epoch)
  local nkey = need_key(need_id)
  for i, role in ipairs(roles) do
    local _, accepted = role_counts(nkey, roles, i - 1)
    if accepted < role.count then return false end
  end
  set_status(need_id, NEED.assigned, now_iso)
  redis.call('HSET', nkey, 'committed_deadline', committed_iso)
  redis.call('ZADD', P .. 'needs:due', committed_epoch, need_id)
  return true
end

local function withdraw_taken(need_id, r, now_iso, now_epoch)
  local reason = 'taken by another volunteer'
  local arm_notify = false
  for _, id in ipairs(redis.call('ZRANGE', need_key(need_id) .. ':offers', 0, -1)) do
    local other = redis.call('HMGET', offer_key(id), 'status', 'volunteer_id', 'role')
    if other[1] == OFFER.pending and (r == nil or (tonumber(other[3] or '0') or 0) == r) then
      end_offer(id, OFFER.withdrawn, now_iso, now_epoch, reason)
      push_event(need_id, cjson.encode({at = now_iso, type = EVENT.offer_withdrawn, actor = 'system',
        detail = {offer_id = id, volunteer_id = other[2], reason = reason}}))
      if announce('offer_taken', need_id, other[2], '', 'taken-' .. id) then arm_notify = true end
      redis.call('INCR', P .. 'stats:offers_taken')
    end
  end
  return arm_notify
end

-- The expiry timer is armed for the earliest pending offer: true when `epoch` is earlier than
-- the time it is armed for (or nothing is armed), so the caller schedules the expiry job then.
local function arm_expiry(epoch)
  local key = P .. 'backlog:armed:expiry'
  local armed = redis.call('GET', key)
  if armed and tonumber(armed) <= tonumber(epoch) then return false end
  redis.call('SET', key, epoch)
  return true
end

-- Put a need back in the match backlog (it keeps its place if it is waiting already); true when
-- this call armed the match drain, so the caller enqueues it.
local function wait_again(need_id, score)
  redis.call('ZADD', P .. 'backlog:waiting', 'NX', score, need_id)
  return redis.call('SET', P .. 'backlog:armed:match', '1', 'NX', 'EX', 120) ~= false
end

-- Tasks a volunteer took, counted per UTC day in their hash ('tasks:<day>'), for fair load;
-- days older than a week are dropped as a new one is counted.
local FAIR_DAYS = 7
local function count_task(vol_id, now_epoch)
  local key = vol_key(vol_id)
  local day = math.floor(now_epoch / 86400)
  redis.call('HINCRBY', key, 'tasks:' .. day, 1)
  for _, name in ipairs(redis.call('HKEYS', key)) do
    local d = string.match(name, '^tasks:(%d+)$')
    if d and tonumber(d) <= day - FAIR_DAYS then redis.call('HDEL', key, name) end
  end
end

-- The hash fields holding the last week's task counts, newest first.
local function task_fields(now_epoch)
  local day = math.floor(now_epoch / 86400)
  local names = {}
  for i = 0, FAIR_DAYS - 1 do names[i + 1] = 'tasks:' .. (day - i) end
  return names
end

-- A need is done: each volunteer who accepted it served from their acceptance until now; counted in the
-- need's cell and the volunteer's, on the day and week it is done (day, week: local, from the caller).
local function count_service(need_id, day, week, now_epoch)
  local nkey = need_key(need_id)
  local cell = redis.call('HGET', nkey, 'report_cell')
  if not cell or not day or day == '' then return end
  for _, id in ipairs(redis.call('ZRANGE', nkey .. ':offers', 0, -1)) do
    local o = redis.call('HMGET', offer_key(id), 'status', 'volunteer_id', 'decided_at')
    if o[1] == OFFER.accepted and o[3] then
      local seconds = math.max(0, math.floor(now_epoch - iso_epoch(o[3]) + 0.5))
      rollup_add(day, week, cell .. '|service_s', seconds)
      rollup_add(day, week, cell .. '|tasks', 1)
      for key, period in pairs({[P .. 'rollup:vd:'] = day, [P .. 'rollup:vw:'] = week,
          [P .. 'rollup:vm:'] = string.sub(day, 1, 7)}) do
        redis.call('HINCRBY', key .. period, o[2] .. '|service_s', seconds)
        redis.call('HINCRBY', key .. period, o[2] .. '|tasks', 1)
      end
    end
  end
end
