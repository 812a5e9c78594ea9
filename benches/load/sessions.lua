-- wrk script for the session scenarios of benches/compare.sh. Each request carries the next
-- of COUNT session cookies `ory_kratos_session=<PREFIX><NNNN>` in turn, so requests in
-- flight at the same moment carry different credentials. Arguments after `--`:
-- PATH PREFIX COUNT [STATUS]. With STATUS, every response is also checked to have exactly
-- that status, and the number that did not is reported as unexpected_status. At the end it
-- prints the line that compare.sh parses.

local requests = {}
local next_index = 0
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local path, prefix, count = args[1], args[2], tonumber(args[3])
   for i = 0, count - 1 do
      local cookie = string.format("ory_kratos_session=%s%04d", prefix, i)
      requests[i + 1] = wrk.format("GET", path, { ["Cookie"] = cookie })
   end
   unexpected_status = 0
   local expected = tonumber(args[4])
   if expected then
      -- Defined only when asked for: wrk parses response headers for Lua only when the
      -- script has a response function.
      response = function(status)
         if status ~= expected then
            unexpected_status = unexpected_status + 1
         end
      end
   end
end

function request()
   next_index = next_index % #requests + 1
   return requests[next_index]
end

function done(summary, latency)
   local errors = summary.errors
   local unexpected = 0
   for _, thread in ipairs(threads) do
      unexpected = unexpected + (thread:get("unexpected_status") or 0)
   end
   io.write(string.format(
      "RESULT requests=%d duration_us=%d status_errors=%d socket_errors=%d p50_us=%d p99_us=%d unexpected_status=%d\n",
      summary.requests, summary.duration, errors.status,
      errors.connect + errors.read + errors.write + errors.timeout,
      latency:percentile(50), latency:percentile(99), unexpected))
end
