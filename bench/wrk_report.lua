-- wrk script shared by every scenario.
--
-- BENCH_BODY_BYTES (environment): when set above 0, every request is a POST
-- of that many bytes (the upload scenario); BENCH_JSON_BODY, when not empty,
-- is POSTed as application/json (the typed scenario); otherwise wrk's GET.
-- At the end it prints one line, "BENCH_JSON {...}", that bench/run.py reads:
-- request and byte counts, the run's duration, error counts and latency
-- percentiles in microseconds.

local body_bytes = tonumber(os.getenv("BENCH_BODY_BYTES") or "0") or 0
local json_body = os.getenv("BENCH_JSON_BODY") or ""

if body_bytes > 0 then
   wrk.method = "POST"
   wrk.body = string.rep("x", body_bytes)
   wrk.headers["Content-Type"] = "application/octet-stream"
elseif json_body ~= "" then
   wrk.method = "POST"
   wrk.body = json_body
   wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
   local e = summary.errors
   local fields = {
      string.format('"requests": %d', summary.requests),
      string.format('"bytes": %.0f', summary.bytes),
      string.format('"duration_us": %.0f', summary.duration),
      string.format('"connect_errors": %d', e.connect),
      string.format('"read_errors": %d', e.read),
      string.format('"write_errors": %d', e.write),
      string.format('"status_errors": %d', e.status),
      string.format('"timeouts": %d', e.timeout),
      string.format('"mean_us": %.1f', latency.mean),
      string.format('"p50_us": %.0f', latency:percentile(50)),
      string.format('"p90_us": %.0f', latency:percentile(90)),
      string.format('"p99_us": %.0f', latency:percentile(99)),
      string.format('"max_us": %.0f', latency.max),
   }
   io.write("BENCH_JSON {" .. table.concat(fields, ", ") .. "}\n")
end
