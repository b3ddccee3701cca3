-- wrk script: sends each request with the next token of a file (one JWT per
-- line) as "Authorization: Bearer <jwt>", so that an agent without a cache
-- verifies a different token each time. Usage:
--   wrk ... -s bench/wrk-tokens.lua URL -- TOKENS_FILE
-- Each wrk thread walks the whole list from the start. Prints the JSON result
-- line of wrk-report.lua.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk-report.lua")

local tokens = {}
local next_token = 0

function init(args)
   local path = args[1]
   if not path then
      error("wrk-tokens.lua: give the tokens file after --")
   end
   for line in io.lines(path) do
      if #line > 0 then
         tokens[#tokens + 1] = "Bearer " .. line
      end
   end
   if #tokens == 0 then
      error("wrk-tokens.lua: no token in " .. path)
   end
end

function request()
   next_token = next_token % #tokens + 1
   return wrk.format(nil, nil, { Authorization = tokens[next_token] })
end
