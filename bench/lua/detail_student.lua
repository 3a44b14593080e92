-- One page: an event's page, random events of the data set, seen by a logged-in student with the cookies a
-- browser keeps (session, CSRF): a page with the student's own registration on it, which no stored page
-- can answer for everyone.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
   local pair = pick(data.csrf)
   return wrk.format("GET", "/events/" .. pick(data.slugs) .. "/",
                     {Cookie = "csrftoken=" .. pair[1] .. "; hyperion_session=" .. pick(data.sessions)})
end
