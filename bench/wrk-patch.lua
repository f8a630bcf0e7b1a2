-- One-key patches spread over 200 sessions, as many browsers typing would send them: each
-- session has its own clientId and a seq that grows by one per patch.
local sessions = 200
local n = 0
request = function()
  n = n + 1
  local session = n % sessions
  local seq = math.floor(n / sessions) + 1
  local body = string.format('{"variables":{"field%d":"value %d"},"clientId":"wrk-%d","seq":%d}', n % 7, n, session, seq)
  return wrk.format('POST', string.format('/api/session/wrk-session-%04d', session), { ['Content-Type'] = 'application/json' }, body)
end
