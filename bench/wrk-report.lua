-- wrk script: at the end of a run, prints the result as one JSON line that
-- bench/spoa.sh reads. Latencies in microseconds. "non2xx" is wrk's count of
-- responses with a status of 400 or more (wrk's "Non-2xx or 3xx responses");
-- the configurations under test answer only 200, 401 or 403, so any of them
-- makes the run invalid. Used alone for a fixed request, or loaded by
-- wrk-tokens.lua.

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d,' ..
      '"p999_us":%d,"max_us":%d,"non2xx":%d,"connect_errors":%d,"read_errors":%d,' ..
      '"write_errors":%d,"timeouts":%d}\n',
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
      latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
