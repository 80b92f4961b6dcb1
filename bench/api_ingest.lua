-- wrk script: POST 1,000-record NDJSON bodies to /api/v1/records, every body new records
-- (building ids differ per thread and request), so each request is a real ingest.
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function request()
  counter = counter + 1
  local lines = {}
  for i = 1, 1000 do
    local day = (i % 28) + 1
    local month = (math.floor(i / 28) % 12) + 1
    lines[i] = string.format(
      '{"building_id":"W%d-%d-%d","date":"2024-%02d-%02d","consumption":%d.5,"temperature":%d,"provider":"bench"}',
      tid, counter, math.floor(i / 336), month, day, 100 + i, i % 30)
  end
  return wrk.format("POST", "/api/v1/records", {["Content-Type"] = "application/x-ndjson"}, table.concat(lines, "\n"))
end
