-- One page: an event's page, random events of the data set (anonymous visitor).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
   return wrk.format("GET", "/events/" .. pick(data.slugs) .. "/")
end
