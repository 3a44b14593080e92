-- Shared by the wrk scripts: the per-run data (sessions, CSRF pairs, feed tokens, slugs, the mix) written
-- by bench.run, a per-thread random seed, and a machine-readable summary at the end.
data = dofile(os.getenv("BENCH_WRK_DATA"))

local thread_count = 0
function setup(thread)
   thread:set("thread_id", thread_count)
   thread_count = thread_count + 1
end

function init(args)
   math.randomseed(1000 + 7919 * (thread_id or 0))
end

function pick(list)
   return list[math.random(#list)]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, ' ..
      '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
