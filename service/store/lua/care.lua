-- care.lua: the care register's households and their recurring visits, each change one atomic step.
-- A household has one open visit at a time (planned, or due with its need out); the next one is
-- planned in the same step that closes it (done or overdue), so no visit is lost or doubled however
-- many requests, sweepers or workers act at once.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON, by mode:
--   save:   {household_id, create, now_iso, fields: {name: encoded value, '' deletes}, phone (the contact
--            phone the record will have), level (the attention level `plan` is for),
--            plan: {visit_id, due_iso, due_epoch, period_end_iso, period_end_epoch} or absent, cadence_seconds}: create or update a household and its indexes; on creation, or when the
--            attention level changes, its open visit is replanned: a planned one is cancelled and `plan`
--            takes its place, a due one keeps going but its period ends cadence_seconds after it was due.
--            Answers {'ok', JSON {planned, cancelled, changed, level_was}} or a refusal: exists,
--            no_household, phone_taken (detail: the household holding the phone).
--   delete: {household_id, now_iso}: removes the household and its indexes, cancels its open visit.
--            Answers {'ok', JSON {cancelled, need_id (the cancelled visit's need, or ''), was (its status)}}, or
--            no_household.
--   due:    {visit_id, need_id, now_iso, now_epoch, day, week, lock_seconds}: a planned visit whose time has come
--            becomes due with this need id; the need is owed (visits:to_create) until the caller writes it, and
--            the caller holds the owed need's lock for lock_seconds (of the caller's clock) from this step on, so
--            no other sweep writes it meanwhile.
--   take_owed: {member ('visit:<id>' | 'help:<id>'), now_epoch, lock_seconds}: take the lock for writing an owed
--            need, unless another process holds it and its time (by the callers' clock) has not run out.
--            Answers {'ok', ''} or busy.
--            Answers {'ok', need_id}, or no_visit, visit_status (detail: the status), not_due.
--   close:  {visit_id, to: done|overdue, now_iso, now_epoch, day, week, outcome, help_kind, note, visitor_id, help_need_id,
--            level, plan}: closes a due visit (or an overdue one as done); when it was the household's
--            open visit, `plan` (for attention level `level`) becomes the next one. A needs_help need is
--            owed (visits:to_create) until the caller writes it. An overdue visit's need gets a
--            visit_overdue event, and its announcement goes to the outbox.
--            Answers {'ok', JSON {planned, was, arm_notify (the notify drain must be enqueued)}}, or no_visit,
--            visit_status (detail: the status), not_due (overdue before the end of its period),
--            busy (detail: the household's level, when it is not `level`: plan again).

local a = cjson.decode(ARGV[2])
local function household_key(id) return P .. 'household:' .. id end
local function visit_key(id) return P .. 'visit:' .. id end

local function move_status(visit_id, old, new)
  if old then redis.call('ZREM', P .. 'visits:status:' .. old, visit_id) end
  redis.call('ZADD', P .. 'visits:status:' .. new, 0, visit_id)
  redis.call('HSET', visit_key(visit_id), 'status', new)
end

-- a new planned visit of the household, its open visit from now on
local function plan_visit(household_id, level, plan, now_iso)
  local id = plan.visit_id
  redis.call('HSET', visit_key(id), 'id', id, 'household_id', household_id, 'attention_level', level,
    'due_at', plan.due_iso, 'due_epoch', plan.due_epoch, 'period_end', plan.period_end_iso,
    'period_end_epoch', plan.period_end_epoch, 'created_at', now_iso)
  move_status(id, nil, VISIT.planned)
  redis.call('ZADD', P .. 'visits:planned', plan.due_epoch, id)
  redis.call('ZADD', household_key(household_id) .. ':visits', plan.due_epoch, id)
  redis.call('HSET', household_key(household_id), 'open_visit', id)
  redis.call('INCR', P .. 'stats:visits_planned')
  return id
end

local function cancel_visit(visit_id, status, now_iso)
  redis.call('ZREM', P .. 'visits:planned', visit_id)
  redis.call('ZREM', P .. 'visits:open', visit_id)
  move_status(visit_id, status, VISIT.cancelled)
  redis.call('HSET', visit_key(visit_id), 'closed_at', now_iso)
  redis.call('INCR', P .. 'stats:visits_cancelled')
end

-- the reports' count of a visit becoming due, done or overdue, on the local day and week given
local function count_for_reports(visit_id, status)
  local v = redis.call('HMGET', visit_key(visit_id), 'attention_level', 'household_id')
  local grid = v[2] and redis.call('HGET', household_key(v[2]), 'grid') or false
  count_visit(a.day, a.week, grid or '', v[1], status)
end

-- the lock of an owed need: its value is the epoch its holder's time runs out (by the callers' clock, which
-- tests move), its Redis expiry only clears forgotten ones
local function hold_owed(member, now_epoch, lock_seconds)
  redis.call('SET', P .. 'once:owed:' .. member, tonumber(now_epoch) + tonumber(lock_seconds), 'EX', 86400)
end

local function index(name, old, new, id)
  if old == new then return end
  if old and old ~= '' then redis.call('ZREM', P .. name .. old, id) end
  if new and new ~= '' then redis.call('ZADD', P .. name .. new, 0, id) end
end

if a.mode == 'save' then
  local id = a.household_id
  local key = household_key(id)
  local exists = redis.call('EXISTS', key) == 1
  if a.create and exists then return refuse('exists') end
  if not a.create and not exists then return refuse('no_household') end
  if a.phone ~= '' then
    local holder = redis.call('GET', P .. 'households:phone:' .. a.phone)
    if holder and holder ~= id then return refuse('phone_taken', holder) end
  end
  local old = redis.call('HMGET', key, 'grid', 'attention_level', 'contact_phone', 'open_visit')
  set_fields(key, a.fields)
  -- the indexes follow the record as it is now (another change may have come just before this one)
  local now = redis.call('HMGET', key, 'grid', 'attention_level', 'contact_phone', 'lat', 'lon')
  if a.create then redis.call('ZADD', P .. 'households', 0, id) end
  index('households:grid:', old[1] or '', now[1] or '', id)
  index('households:level:', old[2] or '', now[2] or '', id)
  if old[3] and old[3] ~= now[3] and redis.call('GET', P .. 'households:phone:' .. old[3]) == id then
    redis.call('DEL', P .. 'households:phone:' .. old[3])
  end
  if now[3] then redis.call('SET', P .. 'households:phone:' .. now[3], id) end
  redis.call('GEOADD', P .. 'households:geo', now[5], now[4], id)
  local planned, cancelled, changed = '', '', ''
  if a.plan and (a.create or (old[2] or '') ~= a.level) then
    local open = old[4]
    local status = open and redis.call('HGET', visit_key(open), 'status') or false
    if status == VISIT.due then
      -- its need is out: it keeps going, with the new level's period
      local due = tonumber(redis.call('HGET', visit_key(open), 'due_epoch'))
      local ends = due + tonumber(a.cadence_seconds)
      redis.call('HSET', visit_key(open), 'attention_level', a.level, 'period_end', iso(ends),
        'period_end_epoch', string.format('%.3f', ends))
      redis.call('ZADD', P .. 'visits:open', ends, open)
      changed = open
    else
      if status == VISIT.planned then
        cancel_visit(open, status, a.now_iso)
        cancelled = open
      end
      planned = plan_visit(id, a.level, a.plan, a.now_iso)
    end
  end
  return ok(cjson.encode({planned = planned, cancelled = cancelled, changed = changed, level_was = old[2] or ''}))
end

if a.mode == 'delete' then
  local id = a.household_id
  local key = household_key(id)
  local h = redis.call('HMGET', key, 'grid', 'attention_level', 'contact_phone', 'open_visit')
  if redis.call('EXISTS', key) == 0 then return refuse('no_household') end
  local cancelled, need_id, was = '', '', ''
  if h[4] then
    local v = redis.call('HMGET', visit_key(h[4]), 'status', 'need_id')
    if v[1] == VISIT.planned or v[1] == VISIT.due then
      cancel_visit(h[4], v[1], a.now_iso)
      cancelled, need_id, was = h[4], v[2] or '', v[1]
    end
  end
  redis.call('ZREM', P .. 'households', id)
  index('households:grid:', h[1] or '', '', id)
  index('households:level:', h[2] or '', '', id)
  if h[3] and redis.call('GET', P .. 'households:phone:' .. h[3]) == id then
    redis.call('DEL', P .. 'households:phone:' .. h[3])
  end
  redis.call('ZREM', P .. 'households:geo', id)
  redis.call('DEL', key, key .. ':visits')
  return ok(cjson.encode({cancelled = cancelled, need_id = need_id, was = was}))
end

if a.mode == 'due' then
  local key = visit_key(a.visit_id)
  local v = redis.call('HMGET', key, 'status', 'due_epoch', 'period_end_epoch')
  if not v[1] then return refuse('no_visit') end
  if v[1] ~= VISIT.planned then return refuse('visit_status', v[1]) end
  if tonumber(v[2]) > tonumber(a.now_epoch) then return refuse('not_due') end
  move_status(a.visit_id, v[1], VISIT.due)
  redis.call('HSET', key, 'need_id', a.need_id)
  redis.call('ZREM', P .. 'visits:planned', a.visit_id)
  redis.call('ZADD', P .. 'visits:open', v[3], a.visit_id)
  redis.call('SADD', P .. 'visits:to_create', 'visit:' .. a.visit_id)
  hold_owed('visit:' .. a.visit_id, a.now_epoch, a.lock_seconds)
  redis.call('INCR', P .. 'stats:visits_due')
  count_for_reports(a.visit_id, VISIT.due)
  return ok(a.need_id)
end

if a.mode == 'take_owed' then
  local until_epoch = redis.call('GET', P .. 'once:owed:' .. a.member)
  if until_epoch and tonumber(until_epoch) > tonumber(a.now_epoch) then return refuse('busy') end
  hold_owed(a.member, a.now_epoch, a.lock_seconds)
  return ok('')
end

if a.mode == 'close' then
  local key = visit_key(a.visit_id)
  local v = redis.call('HMGET', key, 'status', 'household_id', 'period_end_epoch')
  if not v[1] then return refuse('no_visit') end
  if not (v[1] == VISIT.due or (v[1] == VISIT.overdue and a.to == VISIT.done)) then
    return refuse('visit_status', v[1])
  end
  -- overdue only once its period has ended (a new level may have just made it longer)
  if a.to == VISIT.overdue and tonumber(v[3]) > tonumber(a.now_epoch) then return refuse('not_due') end
  local hkey = household_key(v[2])
  local h = redis.call('HMGET', hkey, 'attention_level', 'open_visit')
  local planned, arm_notify = '', false
  if h[2] == a.visit_id then
    if h[1] ~= a.level then return refuse('busy', h[1]) end
    planned = plan_visit(v[2], a.level, a.plan, a.now_iso)
  end
  redis.call('ZREM', P .. 'visits:open', a.visit_id)
  move_status(a.visit_id, v[1], a.to)
  count_for_reports(a.visit_id, a.to)
  if a.to == VISIT.done then
    set_fields(key, {closed_at = a.now_iso, outcome = a.outcome, help_kind = a.help_kind, note = a.note,
      visitor_id = a.visitor_id, help_need_id = a.help_need_id})
    if a.visitor_id ~= '' and h[1] then redis.call('HSET', hkey, 'last_visitor', a.visitor_id) end
    if a.help_need_id ~= '' then redis.call('SADD', P .. 'visits:to_create', 'help:' .. a.visit_id) end
    redis.call('INCR', P .. 'stats:visits_done')
  else
    redis.call('HSET', key, 'overdue_at', a.now_iso)
    redis.call('INCR', P .. 'stats:visits_overdue')
    -- on the visit need's timeline, and the grid's captain is told (the notify drain plans it)
    local w = redis.call('HMGET', key, 'need_id', 'period_end')
    if w[1] and redis.call('EXISTS', need_key(w[1])) == 1 then
      push_event(w[1], cjson.encode({at = a.now_iso, type = EVENT.visit_overdue, actor = 'system',
        detail = {visit_id = a.visit_id, period_end = w[2]}}))
      arm_notify = announce('visit_overdue', w[1], '', '', 'visit-' .. a.visit_id)
    end
  end
  return ok(cjson.encode({planned = planned, was = v[1], arm_notify = arm_notify}))
end

return refuse('no_visit', 'unknown mode')
