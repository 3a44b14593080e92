-- The floor: the health check (no database, no template), through the whole middleware stack.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
   return wrk.format("GET", "/healthz")
end
