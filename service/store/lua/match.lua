-- match.lua: find the nearest eligible volunteers for a need and reserve them, in one step.
-- The choice is service.matching.choose_volunteers' (its specification): eligible means on duty,
-- every required skill, load below capacity, not offered this need before, within the need's
-- radius by great-circle distance; the best come first by (distance in 100 m steps, load,
-- idle since, id). The search walks the smallest GEO set of available volunteers holding one
-- or two of the need's skills, ring by ring (each ring 4x the last), and asks GEOSEARCH for
-- more members until it holds everyone who could tie with the last one chosen. A need still
-- missing volunteers after the whole radius is escalated in the same step.
-- Roles: each role of the need (lib.lua's need_roles) is matched on its own, in order, with its own
-- skills and places; a volunteer chosen for one role in this step is not chosen for another (and
-- nobody is offered the need twice). Each offer records its role's index.
-- Parallel offers: a need is offered to K volunteers per open place at once (K by priority, at
-- least parallel_after_expiry once one of its offers expired unanswered); the first to accept wins.
-- Pre-emption: an urgent need that finds nobody free takes the nearest eligible volunteer's
-- pending (never accepted) offer of an ordinary need; that need waits in the backlog again. So it
-- does when the free one it found is more than preempt_margin_km further than such a volunteer.
-- Offers beyond one per place (parallel) go only to those within parallel_reach_km of the nearest.
-- arrive_by: volunteers who cannot be there in time at travel_speed_kmh are not offered it.
-- Fair load: those nearly as near as the nearest (service.matching.FairLoad) come first, fewest
-- tasks in the last week first.
-- Continuity: before them, the volunteers the need favours (its 'favoured' field: a household's previous
-- visitor, then its preferred volunteers) who are nearly as near as the nearest, in that order.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {need_id, now_epoch, offer_id (the first offer's id; more get -2, -3, ...),
--                priority_seconds: {priority: accept window in seconds} (for needs that do not
--                carry their own window), max_offers,
--                first_ring_km (the smallest first ring), area_km2 (the area served),
--                max_radius_km (for needs without their own radius_km), tie_km,
--                buckets (histogram bounds, seconds), parallel: {priority: K},
--                parallel_after_expiry, parallel_reach_km, preempt_margin_km, travel_speed_kmh,
--                wait_class: {priority: backlog urgency class} (for pre-empted ordinary needs),
--                fair: {ratio, max_km, pool} (pool 0: nearest first only),
--                prefer: volunteer ids a joint assignment chose (taken when every one is still
--                  eligible, else the search runs as usual; needs with one role only),
--                plan_only: reserve nothing, answer the candidates, extra: how many beyond the places,
--                replan: with plan_only, count places as if the need's pending offers were not there,
--                within_km: with plan_only, list nobody further than this}
-- With plan_only it answers {'ok', JSON {places: open places (not counting parallel offers),
--   fanout, urgent, roles: how many roles, favoured: whether the need favours volunteers (matched on its own), candidates: [{volunteer_id, distance_km, free}] in the order
--   of choice (none for a need with several roles: those are matched on their own)}}.
-- Each offer's announcement goes to the outbox, and the expiry timer is armed for it if it is the
-- earliest pending offer.
-- Answers {'ok', JSON {offers: [{offer_id, volunteer_id, distance_km, code, expires_epoch, role}],
--                      missing: still missing after this call,
--                      arm_notify: the notify drain must be enqueued,
--                      arm_expiry: the expiry job must be scheduled at this epoch, or '',
--                      escalated: why the need was escalated, or '',
--                      escalation: when escalated, {grid, priority, count (its escalations, naming this one)},
--                      arm_match: the match drain must be enqueued (a pre-empted need waits again)}},
-- or a refusal: no_need, need_status (detail: the status), max_offers (detail: offers made).

local a = cjson.decode(ARGV[2])
local need_id, now_epoch = a.need_id, tonumber(a.now_epoch)
local now_iso = iso(now_epoch)
local nkey = need_key(need_id)
local n = redis.call('HMGET', nkey, 'status', 'active', 'volunteers_needed', 'offers_made', 'skills', 'lat', 'lon',
  'priority', 'created_epoch', 'radius_km', 'accept_seconds', 'accepted', 'expired_offers', 'vulnerability',
  'arrive_by_epoch', 'favoured', 'roles', 'role:0:active')
if not n[1] then return refuse('no_need') end
if not MATCHABLE[n[1]] then return refuse('need_status', n[1]) end
local roles = need_roles(nkey, {n[17], n[5], n[3]})
local plan_only = a.plan_only == true
-- This step's events on the need's timeline, pushed at once when it ends. A queued need starts
-- matching; that status is written only if the step ends with the need still matching (offered
-- or escalated, it is written once, straight to that status: the indexes, fields and report
-- figures end the same).
local events = {}
local starting = n[1] == NEED.queued and not plan_only
if starting then
  table.insert(events, cjson.encode({at = now_iso, type = EVENT.matching_started, actor = 'system', detail = {}}))
end
-- the need's status as this step leaves it: the deferred status and the events written
local function conclude(status)
  if status then
    set_status(need_id, status, now_iso, starting and NEED.queued or nil)
  elseif starting then
    set_status(need_id, NEED.matching, now_iso, NEED.queued)
  end
  if #events > 0 then redis.call('RPUSH', nkey .. ':events', unpack(events)) end
end
-- offers wanted per open place: K for the priority, more once an offer went unanswered
local fanout = tonumber(a.parallel[n[8]] or 1) or 1
if (tonumber(n[13] or '0') or 0) > 0 then fanout = math.max(fanout, tonumber(a.parallel_after_expiry)) end
-- per role: open places (volunteers still without a live offer) and offers to make now
local wanting = false
for r, role in ipairs(roles) do
  local active, accepted
  if #roles == 1 then
    active, accepted = tonumber(n[2] or '0') or 0, tonumber(n[12] or '0') or 0  -- role_counts' totals, read above
  else
    active, accepted = role_counts(nkey, roles, r - 1)
  end
  local missing = (role.count - accepted) * fanout - (active - accepted)
  role.places = role.count - active
  if plan_only and a.replan == true then
    -- listing for a need whose pending offer may be moved: its places as if nothing were pending
    role.places = role.count - accepted
    missing = role.places
  end
  role.missing = 0
  if role.places > 0 or missing > 0 then
    role.missing = math.max(missing, role.places)
    wanting = true
  end
end
if not wanting then
  conclude()
  return ok(cjson.encode({offers = {}, missing = 0, arm_notify = false, arm_expiry = '', escalated = '',
    arm_match = false}))
end
if tonumber(n[4]) >= tonumber(a.max_offers) then
  conclude()
  return refuse('max_offers', n[4])
end

local lat, lon = tonumber(n[6]), tonumber(n[7])
-- the need's own radius, capped when it was set; needs recorded without one use the maximum
local max_km = tonumber(a.max_radius_km)
if n[10] and n[10] ~= '' then max_km = tonumber(n[10]) end
-- a listing may look less far (for a need whose offer may be moved: only nearer ones are of use)
if plan_only and a.within_km then max_km = math.min(max_km, tonumber(a.within_km)) end
-- to be there by arrive_by, nobody further than the travel speed allows
local too_late = false
if n[15] and n[15] ~= '' then
  local reach = math.max(tonumber(n[15]) - now_epoch, 0) / 3600 * tonumber(a.travel_speed_kmh)
  if reach < max_km then max_km, too_late = reach, true end
end
local urgent = is_urgent(n[8], n[14])
-- continuity: volunteers the need favours (a household's previous visitor, then its preferred), in order
local favoured, favoured_at = {}, {}
for vid in string.gmatch(n[16] or '', '[^,]+') do
  if not favoured_at[vid] then
    table.insert(favoured, vid)
    favoured_at[vid] = #favoured
  end
end
-- a need with several roles is not planned jointly with others: it is matched on its own
if plan_only and #roles > 1 then
  return ok(cjson.encode({places = tonumber(n[3]) - tonumber(n[2]), fanout = fanout, urgent = urgent,
    roles = #roles, candidates = {}, favoured = #favoured > 0}))
end
local tie = tonumber(a.tie_km)

-- great-circle distance in km, computed as geopy's great_circle does (radius 6371.009 km)
local rad = math.pi / 180
local slat1, clat1 = math.sin(lat * rad), math.cos(lat * rad)
local function great_circle(vlat, vlon)
  local lat2, dlng = vlat * rad, (vlon - lon) * rad
  local slat2, clat2 = math.sin(lat2), math.cos(lat2)
  local cd, sd = math.cos(dlng), math.sin(dlng)
  local y = math.sqrt((clat2 * sd) ^ 2 + (clat1 * slat2 - slat1 * clat2 * cd) ^ 2)
  return 6371.009 * math.atan2(y, slat1 * slat2 + clat1 * clat2 * cd)
end
-- Python's round(): half to even
local function band(km)
  local x = km / tie
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then return f + 1 end
  return f
end
-- GEOSEARCH measures with Redis' own earth radius; a great-circle bound b is at most this far by it
local REDIS_PER_GC = 6372.7976 / 6371.009 * (1 + 1e-9)
-- ... and it measures from the centre of the geohash cell a member is stored in (cells under 0.6 m
-- across, distances given to 0.1 m): a member may seem up to this much further than it is
local GEO_SLACK_KM = 0.001

local tried = nkey .. ':tried'
-- those offered this need before, read once (a need is offered to few): no call per candidate
local was_tried = {}
for _, vid in ipairs(redis.call('SMEMBERS', tried)) do was_tried[vid] = true end
local fair = a.fair
local pool = tonumber(fair.pool)
local tasks_of = pool > 0 and task_fields(now_epoch) or {}
local in_chosen = {}  -- volunteers chosen in this step, for any role
local arm_match = false

-- An ordinary need does not take a volunteer an escalated urgent need is waiting for: that need
-- is put back in the backlog instead (urgent needs are drained first), and finds them free.
local urgent_waiting = P .. 'needs:escalated_urgent:geo'
local guard = not urgent and redis.call('ZCARD', urgent_waiting) > 0
local woken = {}
local function wanted_by_urgent(vid, vlat, vlon, vskills)
  local near = redis.call('GEOSEARCH', urgent_waiting, 'FROMLONLAT', vlon, vlat, 'BYRADIUS',
    tonumber(a.max_radius_km) * 1.001, 'km', 'ASC', 'COUNT', 16, 'WITHDIST')
  for _, hit in ipairs(near) do
    local uid = hit[1]
    local u = redis.call('HMGET', need_key(uid), 'status', 'skills', 'radius_km', 'priority', 'created_epoch')
    local fits = u[1] == NEED.escalated
    for s in string.gmatch(u[2] or '', '[^,]+') do
      if not in_csv(vskills, s) then fits = false end
    end
    local reach = tonumber(u[3] or '') or tonumber(a.max_radius_km)
    if fits and tonumber(hit[2]) <= reach and redis.call('SISMEMBER', need_key(uid) .. ':tried', vid) == 0 then
      if not woken[uid] then
        woken[uid] = true
        if wait_again(uid, math.floor(now_epoch * 1000)) then arm_match = true end  -- urgent class 0
        redis.call('INCR', P .. 'stats:urgent_wakeups')
      end
      return true
    end
  end
  return false
end

local function better(x, y)
  for i = 1, 4 do
    if x[i] ~= y[i] then return x[i] < y[i] end
  end
  return false
end

-- fewer recent tasks first, then as better()
local function fairer(x, y)
  if x[8] ~= y[8] then return x[8] < y[8] end
  return better(x, y)
end

-- The best `missing` eligible volunteers for one role (every one of its skills), as rows
-- {band, load, idle since, id, km, lat, lon, recent tasks, capacity, skills} in the order of choice; fewer
-- when fewer are eligible within the whole radius.
local function search(role, missing, prefer)
  local skills = {}
  for _, s in ipairs(role.skills) do table.insert(skills, s) end
  if #skills == 0 then skills = {'general'} end
  local need_skills = role.csv

  -- the smallest set of available volunteers holding required skills: one skill's, or two skills'
  local set, smallest = nil, nil
  local function weigh(key)
    local size = redis.call('ZCARD', key)
    if smallest == nil or size < smallest then set, smallest = key, size end
  end
  -- a skill with a pair set is not weighed on its own: the pair's members are some of its own
  local paired = {}
  for i, s in ipairs(skills) do
    for j = i + 1, #skills do
      if s ~= 'general' and skills[j] ~= 'general' then paired[s], paired[skills[j]] = true, true end
    end
  end
  for i, s in ipairs(skills) do
    if not paired[s] then weigh(P .. 'avail:' .. s) end
    for j = i + 1, #skills do
      if s ~= 'general' and skills[j] ~= 'general' then weigh(pair_key(s, skills[j])) end
    end
  end

  local checked = {}   -- volunteer id -> rank row or false
  local eligible = {}

  local function consider(vid)
    if checked[vid] ~= nil then return end
    checked[vid] = false
    if in_chosen[vid] or was_tried[vid] then return end
    local v = redis.call('HMGET', vol_key(vid), 'on_duty', 'load', 'capacity', 'skills', 'lat', 'lon', 'idle_since')
    if v[1] ~= '1' or not v[3] or tonumber(v[2]) >= tonumber(v[3]) then return end
    for _, s in ipairs(skills) do
      if need_skills ~= '' and not in_csv(v[4], s) then return end
    end
    local km = great_circle(tonumber(v[5]), tonumber(v[6]))
    if km > max_km then return end
    if guard and wanted_by_urgent(vid, v[5], v[6], v[4]) then return end
    -- recent tasks (row[8]) are read only for those nearly as near as the nearest (recent_tasks())
    local row = {band(km), tonumber(v[2]), tonumber(v[7] or '0') or 0, vid, km, v[5], v[6], nil, tonumber(v[3]), v[4]}
    checked[vid] = row
    table.insert(eligible, row)
  end

  -- a row's tasks in the fair-load window, read when first wanted
  local function recent_tasks(row)
    if row[8] == nil then
      local t = redis.call('HMGET', vol_key(row[4]), unpack(tasks_of))
      local tasks = 0
      for i = 1, #tasks_of do tasks = tasks + (tonumber(t[i] or '0') or 0) end
      row[8] = tasks
    end
  end

  -- The eligible in the order of better(), or only the first of them: `ranked` holds the best
  -- `#ranked` rows in that order (all of them when `whole`). In a dense town hundreds share the
  -- nearest 100 m; sorting them all on every widening of the search cost more than the search.
  local ranked, whole = {}, true

  -- the k best eligible rows, in order (one pass over the eligible, keeping the best k in place)
  local function rank(k)
    if k >= #eligible then
      ranked = {}
      for i, row in ipairs(eligible) do ranked[i] = row end
      table.sort(ranked, better)
      whole = true
      return
    end
    local top, n = {}, 0
    for _, row in ipairs(eligible) do
      if n < k or better(row, top[n]) then
        local j = n < k and n + 1 or n
        while j > 1 and better(row, top[j - 1]) do
          top[j] = top[j - 1]
          j = j - 1
        end
        top[j] = row
        if n < k then n = n + 1 end
      end
    end
    ranked, whole = top, false
  end

  -- how far the nearly-as-near reach, given the best eligible row
  local function near_reach()
    if pool <= 0 then return 0 end
    local d0 = ranked[1][5]
    return d0 + tie + math.min(tonumber(fair.ratio) * d0, tonumber(fair.max_km))
  end

  -- how far the search must have looked to know the nearly-as-near: all of near_reach(), unless
  -- the first `pool` in nearest-first order are all within it (then nobody further can join them)
  local function near_search_reach()
    local reach = near_reach()
    if pool <= 0 or #eligible < pool then return reach end
    for i = 1, pool do
      if ranked[i][5] > reach then return reach end
    end
    return math.min(reach, (ranked[pool][1] + 0.5) * tie)
  end

  -- eligible in the order of choice: the nearly as near (at most pool) fairest first, then the rest.
  -- When the first `missing` nearly as near (by better()) have no recent tasks, nobody can come
  -- before them: the others' tasks are not read, and only those first `missing` are in order
  -- (unless favoured volunteers need the whole order).
  local function fair_only()
    if pool <= 0 or #ranked == 0 then return ranked end
    local reach = near_reach()
    local near, rest = {}, {}
    for _, row in ipairs(ranked) do
      if #near < pool and row[5] <= reach then table.insert(near, row) else table.insert(rest, row) end
    end
    local first = #favoured == 0 and math.min(missing, #near) or #near
    local rested = true
    for i = 1, first do
      recent_tasks(near[i])
      if near[i][8] > 0 then
        rested = false
        break
      end
    end
    if not rested or first == #near then
      for _, row in ipairs(near) do recent_tasks(row) end
      table.sort(near, fairer)
    end
    for _, row in ipairs(rest) do table.insert(near, row) end
    return near
  end

  -- ... and before them the favoured nearly as near as the nearest (whatever the pool), in their order
  local function fair_order()
    -- known from the best `missing + pool` rows alone when the nearly as near among them are `pool`
    -- or end before them (a later row is in a further 100 m step than anyone nearly as near); the
    -- favoured may be anywhere in the order
    rank(#favoured == 0 and missing + math.max(pool, 0) or #eligible)
    if not whole and pool > 0 then
      local reach, near = near_reach(), 0
      for _, row in ipairs(ranked) do
        if row[5] <= reach then near = near + 1 end
      end
      if near < pool and ranked[#ranked][1] <= band(reach) then rank(#eligible) end
    end
    local ordered = fair_only()
    if #favoured == 0 or #ordered == 0 then return ordered end
    local d0 = ranked[1][5]
    local reach = d0 + tie + math.min(tonumber(fair.ratio) * d0, tonumber(fair.max_km))
    local first, rest = {}, {}
    for _, row in ipairs(ordered) do
      if favoured_at[row[4]] and row[5] <= reach then table.insert(first, row) else table.insert(rest, row) end
    end
    if #first == 0 then return ordered end
    table.sort(first, function(x, y) return favoured_at[x[4]] < favoured_at[y[4]] end)
    for _, row in ipairs(rest) do table.insert(first, row) end
    return first
  end

  local chosen = {}
  -- the first ring holds about two of the set's volunteers if they were spread evenly over the
  -- area served (an eighth of the radius that would hold sixteen): small in a dense town, wide
  -- in a sparse district; each next ring is 4x wider. It is never narrower than the nearest
  -- 100 m step's edge (as GEOSEARCH measures): the search cannot end before it has looked that
  -- far (everyone who could tie with the nearest must be seen), so a narrower ring is a wasted
  -- call. Everyone within that edge is read however the search goes, so the call that searches
  -- no further is not cut short by COUNT either: one call instead of several growing ones.
  local radius = tonumber(a.max_radius_km)
  if smallest > 0 then radius = math.sqrt(16 * tonumber(a.area_km2) / (math.pi * smallest)) / 8 end
  local nearest_edge = 0.5 * tie * REDIS_PER_GC + GEO_SLACK_KM
  radius = math.min(math.max(radius, tonumber(a.first_ring_km), nearest_edge / 1.001), max_km)
  -- volunteers a joint assignment chose for this need: taken as they are if all still fit
  if prefer and #prefer > 0 and #prefer >= missing then
    local rows = {}
    for _, vid in ipairs(prefer) do
      consider(vid)
      if checked[vid] then table.insert(rows, checked[vid]) end
    end
    if #rows >= missing then
      for i = 1, missing do chosen[i] = rows[i] end
    end
  end
  -- the favoured are looked at wherever they are (they come first only if nearly as near as the nearest)
  for _, vid in ipairs(favoured) do consider(vid) end
  local count = missing + 16  -- grows with what the rings show, and is kept from one ring to the next
  while #chosen == 0 and max_km > 0 do
    local search_km = math.min(radius, max_km) * 1.001
    while true do
      local whole_ring = search_km <= nearest_edge * (1 + 1e-9)
      local hits
      if whole_ring then
        hits = redis.call('GEOSEARCH', set, 'FROMLONLAT', lon, lat, 'BYRADIUS', search_km, 'km', 'ASC', 'WITHDIST')
      else
        hits = redis.call('GEOSEARCH', set, 'FROMLONLAT', lon, lat, 'BYRADIUS', search_km, 'km', 'ASC',
          'COUNT', count, 'WITHDIST')
      end
      for _, h in ipairs(hits) do consider(h[1]) end
      local complete = whole_ring or #hits < count  -- every member within search_km is in hits
      if #eligible >= missing then
        -- everyone who could tie with the last one chosen is nearer than its band's upper edge, and
        -- everyone nearly as near as the nearest is within near_reach()
        local ordered = fair_order()
        local edge = math.max((ordered[missing][1] + 0.5) * tie, near_search_reach()) * REDIS_PER_GC + GEO_SLACK_KM
        local reach = math.min(edge, max_km * 1.001)
        if (complete and search_km >= reach) or (not complete and tonumber(hits[#hits][2]) >= edge) then
          for i = 1, missing do chosen[i] = ordered[i] end
          break
        end
        -- A GEOSEARCH costs as much as the members within its radius, whatever COUNT: in a dense
        -- town a radius much wider than needed costs more than the rest of the step. So: everyone
        -- within search_km seen, widen it step by step (twice as far, or to the edge if nearer);
        -- not everyone seen, look no further than the edge, asking for as many as it should hold
        -- if the set is as dense there as within the last one returned.
        local was_km = search_km
        if complete then
          search_km = math.min(reach, search_km * 2)
        else
          search_km = math.min(reach, search_km)
        end
        local last = complete and was_km or tonumber(hits[#hits][2])
        local want = complete and count or count * 4
        if last > 0 then want = math.max(want, math.ceil(#hits * (search_km / last) ^ 2 * 2) + 16) end
        count = math.min(want, 1e9)
      elseif complete then
        break
      else
        count = count * 4
      end
    end
    if #chosen > 0 or radius >= max_km then break end
    radius = radius * 4
  end
  if #chosen == 0 and #eligible > 0 then
    -- fewer eligible than missing within the whole radius: offer to all of them
    chosen = fair_order()
  end
  return chosen
end

-- An urgent need still short of volunteers takes pending offers of ordinary needs: the nearest
-- volunteers (eligible for the role but for their load) holding one give it up; accepted work is
-- never taken. The volunteers taken are added to `chosen`.
local holding = P .. 'volunteers:holding_ordinary'
local preempted = {}  -- volunteer id -> the ordinary need whose offer was withdrawn
local function preempt(role, chosen, short, within_km)
  local hits = redis.call('GEOSEARCH', holding, 'FROMLONLAT', lon, lat, 'BYRADIUS', within_km * 1.001, 'km', 'ASC',
    'COUNT', 64)
  for _, vid in ipairs(hits) do
    if short <= 0 then break end
    local v = redis.call('HMGET', vol_key(vid), 'on_duty', 'skills', 'lat', 'lon', 'idle_since', 'load')
    local fits = true
    if v[1] == '1' and not in_chosen[vid] and not was_tried[vid] then
      for _, s in ipairs(role.skills) do
        if not in_csv(v[2] or '', s) then fits = false end
      end
      local km = fits and great_circle(tonumber(v[3]), tonumber(v[4])) or max_km + 1
      local taken = false
      if km <= within_km then
        -- the newest pending offer of an ordinary need this volunteer holds
        local theirs = redis.call('ZREVRANGE', vol_key(vid) .. ':offers', 0, 9)
        for _, oid in ipairs(theirs) do
          local o = redis.call('HMGET', offer_key(oid), 'status', 'need_id')
          if o[1] == OFFER.pending then
            local other = redis.call('HMGET', need_key(o[2]), 'priority', 'vulnerability')
            if not is_urgent(other[1], other[2]) then
              local reason = 'withdrawn for a more urgent need nearby'
              end_offer(oid, OFFER.withdrawn, now_iso, now_epoch, reason)
              redis.call('INCR', P .. 'stats:offers_preempted')
              push_event(o[2], cjson.encode({at = now_iso, type = EVENT.offer_preempted, actor = 'system',
                detail = {offer_id = oid, volunteer_id = vid, for_need_id = need_id, reason = reason}}))
              back_to_matching_if_empty(o[2], now_iso)
              local class = tonumber(a.wait_class[other[1]] or 1) or 1
              if wait_again(o[2], class * 1e13 + math.floor(now_epoch * 1000)) then arm_match = true end
              preempted[vid] = o[2]
              in_chosen[vid] = true
              table.insert(chosen, {0, tonumber(v[6]), tonumber(v[5] or '0') or 0, vid, km, v[3], v[4]})
              short = short - 1
              taken = true
              break
            end
          end
        end
      end
      -- nothing of an ordinary need pending any more: out of the set (it is kept lazily)
      if km <= within_km and not taken then redis.call('ZREM', holding, vid) end
    end
  end
end

-- each role in turn: its search, then pre-emption while it is short
local picks = {}  -- {row, role index (0-based)} in the order the offers are made
for r, role in ipairs(roles) do
  local missing = role.missing
  if plan_only then missing = missing + tonumber(a.extra or 0) end
  local chosen = {}
  if missing > 0 then chosen = search(role, missing, #roles == 1 and a.prefer or nil) end
  if not plan_only and fanout > 1 and #chosen > math.max(role.places, 1) then
    -- offers beyond one per place go only to those not much further than the nearest: the first to
    -- accept wins, and one from far away would arrive later than the nearest could have
    local reach = chosen[1][5] + tonumber(a.parallel_reach_km)
    local kept = {}
    for i, row in ipairs(chosen) do
      if i <= math.max(role.places, 1) or row[5] <= reach then table.insert(kept, row) end
    end
    chosen = kept
  end
  for _, row in ipairs(chosen) do in_chosen[row[4]] = true end
  if plan_only then
    local listed = {}
    for i, row in ipairs(chosen) do
      listed[i] = {volunteer_id = row[4], distance_km = row[5], free = row[9] - row[2]}
    end
    return ok(cjson.encode({places = role.places, fanout = fanout, urgent = urgent, roles = 1, candidates = listed,
      arm_match = arm_match, favoured = #favoured > 0}))
  end
  local short = role.places - #chosen
  if urgent and short > 0 and max_km > 0 then preempt(role, chosen, short, max_km) end
  if urgent and #chosen > 0 and max_km > 0 then
    -- free only far away while a nearer volunteer holds a pending offer of an ordinary need: the
    -- nearer one comes instead, when the free one is more than preempt_margin_km further (for the
    -- places themselves, not for the parallel offers beyond them)
    local primary = math.min(#chosen, math.max(role.places, 1))
    for _ = 1, primary do
      local far = 1
      for i = 2, primary do
        if chosen[i][5] > chosen[far][5] then far = i end
      end
      local within = chosen[far][5] - tonumber(a.preempt_margin_km)
      if within <= 0 then break end
      local before = #chosen
      preempt(role, chosen, 1, within)
      if #chosen == before then break end
      in_chosen[chosen[far][4]] = nil
      chosen[far] = table.remove(chosen)
    end
  end
  for _, row in ipairs(chosen) do table.insert(picks, {row = row, role = r - 1}) end
end

local window = tonumber(n[11])
if not window then window = tonumber(a.priority_seconds[n[8]]) end
local expires_epoch = now_epoch + window
local accept = {seconds = window, expires_iso = iso(expires_epoch), expires_epoch = string.format('%.3f', expires_epoch)}
local now_ms = string.format('%d', math.floor(now_epoch * 1000))
local made = tonumber(n[4])
local offers = {}
local offered = {}  -- offers made per role (1-based)
local arm_notify, arm_expiry_at = false, ''
for i, pick in ipairs(picks) do
  local offer_id = a.offer_id
  if i > 1 then offer_id = offer_id .. '-' .. i end
  local row, r = pick.row, pick.role
  local vid, km = row[4], row[5]
  local vkey = vol_key(vid)
  -- an SMS code free right now: a permutation of a counter, 4 digits while they last, then 6
  local code
  for attempt = 1, 12 do
    local seq = redis.call('INCR', P .. 'offercode:seq')
    local width, space = 4, 10000
    if attempt > 6 then width, space = 6, 1000000 end
    code = string.format('%0' .. width .. 'd', (seq * 7919 + 4271) % space)
    if redis.call('SET', P .. 'offercode:' .. code, offer_id, 'NX', 'EX', accept.seconds + 86400) then break end
    code = nil
  end
  redis.call('SADD', tried, vid)
  take_capacity(vid, row[9], row[10])
  if preempted[vid] then announce('offer_preempted', preempted[vid], vid, '', 'preempt-' .. offer_id) end
  -- holders of ordinary offers are where an urgent need looks when nobody is free
  if not urgent then redis.call('GEOADD', holding, row[7], row[6], vid) end
  local distance = string.format('%.3f', km)
  redis.call('HSET', offer_key(offer_id), 'id', offer_id, 'need_id', need_id, 'volunteer_id', vid,
    'status', OFFER.pending, 'created_at', now_iso, 'expires_at', accept.expires_iso,
    'expires_epoch', accept.expires_epoch, 'distance_km', distance, 'code', code or '', 'role', r)
  redis.call('ZADD', nkey .. ':offers', now_ms, offer_id)
  redis.call('ZADD', vkey .. ':offers', now_ms, offer_id)
  redis.call('ZADD', P .. 'offers:pending', accept.expires_epoch, offer_id)
  offered[r + 1] = (offered[r + 1] or 0) + 1
  made = made + 1
  if #roles > 1 then
    redis.call('HINCRBY', nkey, 'active', 1)
    count_role(nkey, r, 'active', 1)
    redis.call('HINCRBY', nkey, 'offers_made', 1)
  end
  if fanout > 1 then redis.call('INCR', P .. 'stats:parallel_offers') end
  table.insert(events, cjson.encode({at = now_iso, type = EVENT.offered, actor = 'system', detail = {
    offer_id = offer_id, volunteer_id = vid, distance_km = tonumber(string.format('%.2f', km)),
    expires_at = accept.expires_iso, role = r}}))
  if made == 1 and n[9] and n[9] ~= '' then
    local since = math.max(now_epoch - tonumber(n[9]), 0)
    local bucket = '+Inf'
    for _, bound in ipairs(a.buckets) do
      if since <= bound then bucket = string.format('%g', bound); break end
    end
    local hist = P .. 'hist:intake_to_first_offer'
    redis.call('HINCRBY', hist, bucket, 1)
    redis.call('HINCRBY', hist, '_count', 1)
    redis.call('HINCRBYFLOAT', hist, '_sum', since)
  end
  if announce('offer', need_id, vid, offer_id) then arm_notify = true end
  if arm_expiry(accept.expires_epoch) then arm_expiry_at = accept.expires_epoch end
  table.insert(offers, {offer_id = offer_id, volunteer_id = vid, distance_km = km, code = code or '',
    expires_epoch = accept.expires_epoch, role = r})
end
-- a need with one role: its counts written once for all of this step's offers
if #roles == 1 and #picks > 0 then
  redis.call('HSET', nkey, 'active', (tonumber(n[2] or '0') or 0) + #picks,
    'role:0:active', (tonumber(n[18] or '0') or 0) + #picks, 'offers_made', made)
end
-- nobody (or not enough) within the whole radius for a role: the dispatchers take over
local escalated = ''
local short_role, missing = nil, 0
for r, role in ipairs(roles) do
  local short = role.places - (offered[r] or 0)
  if short > 0 then
    missing = missing + short
    short_role = short_role or role
  end
end
local status = #offers > 0 and NEED.offered or nil
if short_role and ESCALATES_FROM[status or (starting and NEED.matching) or redis.call('HGET', nkey, 'status')] then
  local wanted = short_role.csv ~= '' and string.gsub(short_role.csv, ',', ', ') or 'any skill'
  escalated = string.format('no available volunteer with %s within %g km', wanted, max_km)
  if too_late then
    escalated = string.format('no available volunteer with %s can arrive in time (within %.1f km)', wanted, max_km)
  end
  if status then
    set_status(need_id, status, now_iso, starting and NEED.queued or nil)
    starting = false
  end
  status = NEED.escalated
  table.insert(events, cjson.encode({at = now_iso, type = EVENT.escalated, actor = 'system',
    detail = {reason = escalated}}))
  redis.call('INCR', P .. 'stats:escalations')  -- who hears it: the escalation ladder (service.captains)
end
conclude(status)
-- an escalation answers what starting its ladder needs, so the caller does not read the need again
local escalation = nil
if escalated ~= '' then
  redis.call('HSET', nkey, 'status_reason', escalated)
  local f = redis.call('HMGET', nkey, 'grid', 'escalations')
  escalation = {grid = f[1] or '', priority = n[8], count = f[2] or ''}
end
return ok(cjson.encode({offers = offers, missing = missing, arm_notify = arm_notify, arm_expiry = arm_expiry_at,
  escalated = escalated, escalation = escalation, arm_match = arm_match}))
