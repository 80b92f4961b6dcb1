-- wrk script: POST one record to /api/v1/records:validate.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"building_id":"B00042","date":"2025-03-14","consumption":412.75,"temperature":8.5,"provider":"provider_a"}'
