-- wrk script: POST one new record per request to /api/v1/records (building ids differ per
-- thread and request), as a meter gateway or a seed-era client would send them.
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"building_id":"S%d-%d","date":"2024-03-14","consumption":412.75,"temperature":8.5,"provider":"bench"}',
    tid, counter)
  return wrk.format("POST", "/api/v1/records", {["Content-Type"] = "application/json"}, body)
end
