-- wrk script: POST one MCP JSON-RPC message in a loop.
-- Environment: BODY (the JSON-RPC message), and optionally SESSION (a legacy Mcp-Session-Id),
-- PROTO (MCP-Protocol-Version), METHOD (Mcp-Method), NAME (Mcp-Name).
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
local function opt(header, var)
  local v = os.getenv(var)
  if v and v ~= "" then wrk.headers[header] = v end
end
opt("Mcp-Session-Id", "SESSION")
opt("MCP-Protocol-Version", "PROTO")
opt("Mcp-Method", "METHOD")
opt("Mcp-Name", "NAME")

local bad = 0
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"result"', 1, true) then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("unexpected answer: " .. status .. " " .. string.sub(body, 1, 200) .. "\n") end
  end
end

done = function(summary, latency, requests)
  io.write(string.format("requests %d  errors(non-2xx or no result) %d  p50 %.0fus  p99 %.0fus\n",
    summary.requests, summary.errors.status + bad, latency:percentile(50), latency:percentile(99)))
end
