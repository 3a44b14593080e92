-- The realistic mix (bench/mix.py holds the weights; bench.run writes them into the data file).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local function session_cookie()
   return "hyperion_session=" .. pick(data.sessions)
end

local builders = {
   home = function() return wrk.format("GET", "/") end,
   filtered = function() return wrk.format("GET", data.filtered_path) end,
   detail = function() return wrk.format("GET", "/events/" .. pick(data.slugs) .. "/") end,
   calendar = function() return wrk.format("GET", "/calendar/") end,
   my_events = function() return wrk.format("GET", "/me/events/", {Cookie = session_cookie()}) end,
   feed = function() return wrk.format("GET", "/feeds/me/" .. pick(data.feeds) .. ".ics") end,
   register = function()
      local pair = pick(data.csrf)
      return wrk.format("POST", "/events/" .. pick(data.slugs) .. "/register/", {
         Cookie = "csrftoken=" .. pair[1] .. "; " .. session_cookie(),
         ["Content-Type"] = "application/x-www-form-urlencoded",
      }, "csrfmiddlewaretoken=" .. pair[2])
   end,
}

function request()
   local roll = math.random() * 100
   for _, entry in ipairs(data.mix) do
      roll = roll - entry[2]
      if roll < 0 then return builders[entry[1]]() end
   end
   return builders.home()
end
