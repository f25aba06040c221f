-- holders.lua: who holds each need right now, read in one consistent step.
-- KEYS: none (built from the prefix)
-- ARGV[1]: key prefix
-- ARGV[2]: JSON {need_ids: [...]}
-- Answers {'ok', [status, holder ids (comma-separated volunteers with a pending or accepted
-- offer), ...] two entries per need, in order; status '' for a need that does not exist}.
local a = cjson.decode(ARGV[2])
local out = {}
for _, need_id in ipairs(a.need_ids) do
  local status = redis.call('HGET', need_key(need_id), 'status') or ''
  local holders = {}
  if status ~= '' then
    for _, oid in ipairs(redis.call('ZRANGE', need_key(need_id) .. ':offers', 0, -1)) do
      local o = redis.call('HMGET', offer_key(oid), 'status', 'volunteer_id')
      if o[1] == OFFER.pending or o[1] == OFFER.accepted then table.insert(holders, o[2]) end
    end
  end
  table.insert(out, status)
  table.insert(out, table.concat(holders, ','))
end
return ok(out)
