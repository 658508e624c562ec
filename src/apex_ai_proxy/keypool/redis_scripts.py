"""The Redis ledger's two Lua scripts (keypool/redis_ledger.py says what the hashes hold).

RESERVE_LUA: check-and-reserve over the candidates in order, all or nothing, on the server's
clock; replies {index (0: refused), bucket or retry_at, headroom or reason, and when reserved:
granted requests, granted tokens, ms left in the bucket} (keypool/grants.py: a candidate's
`want` > 0 asks for a grant beside the request, sized by what is left of every window).
SETTLE_LUA: the real token count replaces the estimate, a refund of requests and tokens (a
request never sent, or what is left of a grant); frees the parallel slot.
"""

from __future__ import annotations

_ARGS_PER_CANDIDATE = 8

RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n, tokens, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local id, probe = ARGV[4], tonumber(ARGV[5])
local bucket_s, minute_s, grant_share = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local bucket = math.floor(now / bucket_s)
local oldest = bucket - math.floor(minute_s / bucket_s)

local function frees_at(buckets, used, limit, need)
  if used + need <= limit or used <= 0 then return nil end
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  local freed = 0
  for _, pair in ipairs(buckets) do
    freed = freed + pair[2]
    if used - freed + need <= limit or used - freed <= 0 then
      return (pair[1] + 1) * bucket_s + minute_s
    end
  end
  return (buckets[#buckets][1] + 1) * bucket_s + minute_s
end

local function share(used, limit)
  if limit > 0 then return 1 - used / limit end
  return 1
end

local function try(i)
  local usage, status = KEYS[2 * i - 1], KEYS[2 * i]
  local base = 8 + (i - 1) * 8
  local rpm, rpd = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local tpm, tpd = tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
  local par, day, day_end = tonumber(ARGV[base + 5]), ARGV[base + 6], tonumber(ARGV[base + 7])
  local want = tonumber(ARGV[base + 8])
  local st = redis.call('HMGET', status, 'state', 'until')
  if st[1] and st[1] ~= 'ok' and now < (tonumber(st[2]) or 0) then
    return tonumber(st[2]), st[1]
  end
  local flat = redis.call('HGETALL', usage)
  local mreq, mtok, dreq, dtok, live = 0, 0, 0, 0, 0
  local rb, tb, stale = {}, {}, {}
  for j = 1, #flat, 2 do
    local field, v = flat[j], tonumber(flat[j + 1]) or 0
    local kind, rest = string.sub(field, 1, 1), string.sub(field, 3)
    if kind == 'm' or kind == 't' then
      local b = tonumber(rest) or 0
      if b < oldest then stale[#stale + 1] = field
      elseif kind == 'm' then mreq = mreq + v; rb[#rb + 1] = {b, v}
      else mtok = mtok + v; tb[#tb + 1] = {b, v} end
    elseif kind == 'r' or kind == 'u' then
      if rest ~= day then stale[#stale + 1] = field
      elseif kind == 'r' then dreq = v else dtok = v end
    elseif kind == 'p' then
      if v <= now then stale[#stale + 1] = field else live = live + 1 end
    end
  end
  if #stale > 0 then redis.call('HDEL', usage, unpack(stale)) end
  local at
  if rpm > 0 then at = frees_at(rb, mreq, rpm, 1); if at then return at, 'rpm' end end
  if tpm > 0 then at = frees_at(tb, mtok, tpm, tokens); if at then return at, 'tpm' end end
  if rpd > 0 and dreq + 1 > rpd then return day_end, 'rpd' end
  if tpd > 0 and dtok > 0 and dtok + tokens > tpd then return day_end, 'tpd' end
  if par > 0 and live >= par then return now + 1, 'max_parallel' end
  local extra, extra_t = 0, 0
  if want > 0 and par == 0 and (not st[1] or st[1] == 'ok') then
    extra = want
    if rpm > 0 then extra = math.min(extra, math.floor((rpm - mreq - 1) / grant_share)) end
    if rpd > 0 then extra = math.min(extra, math.floor((rpd - dreq - 1) / grant_share)) end
    if extra < 0 then extra = 0 end
    extra_t = math.min(extra * tokens, 10000000000000)
    if tpm > 0 then extra_t = math.min(extra_t, math.floor((tpm - mtok - tokens) / grant_share)) end
    if tpd > 0 then extra_t = math.min(extra_t, math.floor((tpd - dtok - tokens) / grant_share)) end
    if extra_t < 0 or extra == 0 then extra, extra_t = 0, 0 end
  end
  redis.call('HINCRBY', usage, 'm:' .. bucket, 1 + extra)
  redis.call('HINCRBY', usage, 't:' .. bucket, tokens + extra_t)
  redis.call('HINCRBY', usage, 'r:' .. day, 1 + extra)
  redis.call('HINCRBY', usage, 'u:' .. day, tokens + extra_t)
  local ttl = math.max(day_end - now, minute_s + 2 * bucket_s)
  if par > 0 then
    redis.call('HSET', usage, 'p:' .. id, tostring(now + lease))
    ttl = math.max(ttl, lease)
  end
  redis.call('PEXPIRE', usage, math.ceil(ttl * 1000) + 1000)
  if st[1] == 'invalid' then  -- this request is the probe; the next waits another interval
    redis.call('HSET', status, 'until', tostring(now + probe))
    redis.call('PEXPIRE', status, math.ceil(probe * 1000) + 60000)
  end
  -- what is left after this request, the grant not counted: it is this caller's to use
  local left = math.min(share(mreq + 1, rpm), share(mtok + tokens, tpm),
                        share(dreq + 1, rpd), share(dtok + tokens, tpd))
  local ms_left = math.floor(((bucket + 1) * bucket_s - now) * 1000)
  return nil, tostring(math.max(left, 0)), bucket, extra, extra_t, ms_left
end

local earliest, why = nil, ''
for i = 1, n do
  local at, detail, b, extra, extra_t, ms_left = try(i)
  if at == nil then return {i, tostring(b), detail, extra, extra_t, ms_left} end
  if earliest == nil or at < earliest then earliest = at end
  if why == '' then why = detail end
end
return {0, tostring(earliest or now), why}
"""

SETTLE_LUA = """
local usage = KEYS[1]
local minute, day = 'm:' .. ARGV[1], 'r:' .. ARGV[2]
local delta, requests = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('HDEL', usage, 'p:' .. ARGV[5])
if redis.call('HEXISTS', usage, minute) == 1 then
  redis.call('HINCRBY', usage, 't:' .. ARGV[1], delta)
  if requests ~= 0 then redis.call('HINCRBY', usage, minute, requests) end
end
if redis.call('HEXISTS', usage, day) == 1 then
  redis.call('HINCRBY', usage, 'u:' .. ARGV[2], delta)
  if requests ~= 0 then redis.call('HINCRBY', usage, day, requests) end
end
return 1
"""
