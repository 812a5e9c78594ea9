-- wrk script for the fixed-request scenarios of benches/compare.sh: sends wrk's one request
-- and, at the end, prints one machine-readable line that compare.sh parses.

function done(summary, latency)
   local errors = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d status_errors=%d socket_errors=%d p50_us=%d p99_us=%d\n",
      summary.requests, summary.duration, errors.status,
      errors.connect + errors.read + errors.write + errors.timeout,
      latency:percentile(50), latency:percentile(99)))
end
