-- Logged-in students (issue 18): every request carries a student's session cookie and the CSRF cookie the
-- browser keeps (csrftoken=<secret>, sent back as is), so no stored page can answer. BENCH_KIND names one
-- kind of request (a single-page cell) or "mix" (bench/mix.py's LOGGEDIN_MIX, written into the data file).
-- The personal feed is fetched as a calendar app does: its token only, no cookie.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local kind = os.getenv("BENCH_KIND") or "mix"

local function cookies()
   local pair = pick(data.csrf)
   return {Cookie = "csrftoken=" .. pair[1] .. "; hyperion_session=" .. pick(data.sessions)}, pair[2]
end

local function get(path)
   local headers = cookies()
   return wrk.format("GET", path, headers)
end

local function post(path)
   local headers, masked = cookies()
   headers["Content-Type"] = "application/x-www-form-urlencoded"
   return wrk.format("POST", path, headers, "csrfmiddlewaretoken=" .. masked)
end

local builders = {
   home = function() return get("/") end,
   filtered = function() return get(data.filtered_path) end,
   detail = function() return get("/events/" .. pick(data.slugs) .. "/") end,
   calendar = function() return get("/calendar/") end,
   my_events = function() return get("/me/events/") end,
   feed = function() return wrk.format("GET", "/feeds/me/" .. pick(data.feeds) .. ".ics") end,
   -- First come, on events still open with seats free: a real registration (its outbox row, its NOTIFY).
   register = function() return post("/events/" .. pick(data.open_slugs) .. "/register/") end,
   -- Random events: mostly not registered, answered with a redirect and a message.
   leave = function() return post("/events/" .. pick(data.slugs) .. "/leave/") end,
}

function request()
   if kind ~= "mix" then return builders[kind]() end
   local roll = math.random() * 100
   for _, entry in ipairs(data.loggedin_mix) do
      roll = roll - entry[2]
      if roll < 0 then return builders[entry[1]]() end
   end
   return builders.home()
end
