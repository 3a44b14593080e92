-- One page: the home page (anonymous visitor, no filters).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
   return wrk.format("GET", "/")
end
