-- wrk script of host/benches/compare.sh: one SCIM load scenario, chosen by environment variables.
--
--   SCENARIO     filter | get | groups | deep_page | patch_active | post
--                | add_member | add_member_excl (group "Big") | add_member_small (group "Small")
--                | tenants (GET /Users/{id} of a random line of tenants.tsv, with its tenant's token)
--                | floor (the requests of get, sent to the HTTP floor server)
--   BENCH_DIR    directory with members.tsv (id<TAB>userName), spares.txt (ids of users in no
--                group), group.txt and small.txt (ids of the groups "Big" and "Small"), and for
--                tenants, tenants.tsv (token<TAB>user id, a line per user of every tenant)
--   SPARE_FROM, SPARE_COUNT  the slice of spares.txt an add_member* scenario adds (0-based)
--   BASE_PATH    SCIM base path on the server (/scim/v2, /v2)
--   BENCH_TOKEN  bearer token (empty: none)
--   RUN_TAG      makes POSTed userNames unique across runs
--   DEEP_START   startIndex of deep_page
--   WRK_THREADS  the -t given to wrk (spares are split between threads)
--
-- Prints one line `RESULT key=value ...` at the end; latencies in microseconds.

local scenario = os.getenv("SCENARIO") or "get"
local dir = os.getenv("BENCH_DIR") or "."
local base = os.getenv("BASE_PATH") or "/scim/v2"
local token = os.getenv("BENCH_TOKEN") or ""
local run_tag = os.getenv("RUN_TAG") or "run"
local deep_start = os.getenv("DEEP_START") or "1"
local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
local spare_from = tonumber(os.getenv("SPARE_FROM") or "0")
local spare_count = tonumber(os.getenv("SPARE_COUNT") or "0")

local headers = { ["Content-Type"] = "application/scim+json", ["Accept"] = "application/scim+json" }
if token ~= "" then
  headers["Authorization"] = "Bearer " .. token
end

-- Main state: one entry per wrk thread, read back in done().
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local ids, names, spares = {}, {}, {}
local tenant_headers, tenant_ids = {}, {}
local group_id = ""
local counter = 0
wraps = 0
local fixed = nil

local function read_lines(path)
  local out = {}
  local f = io.open(path, "r")
  if f == nil then
    return out
  end
  for line in f:lines() do
    if line ~= "" then
      out[#out + 1] = line
    end
  end
  f:close()
  return out
end

function init(args)
  math.randomseed(os.time() + (tid or 0) * 7919)
  for _, line in ipairs(read_lines(dir .. "/members.tsv")) do
    local id, name = line:match("^([^\t]+)\t(.+)$")
    if id then
      ids[#ids + 1] = id
      names[#names + 1] = name
    end
  end
  local all_spares = read_lines(dir .. "/spares.txt")
  if spare_count <= 0 or spare_from + spare_count > #all_spares then
    spare_count = #all_spares - spare_from
  end
  for i = spare_from + 1, spare_from + spare_count do
    spares[#spares + 1] = all_spares[i]
  end
  if scenario == "tenants" then
    for _, line in ipairs(read_lines(dir .. "/tenants.tsv")) do
      local tok, id = line:match("^([^\t]+)\t(.+)$")
      if tok then
        tenant_ids[#tenant_ids + 1] = id
        tenant_headers[#tenant_headers + 1] = {
          ["Accept"] = "application/scim+json",
          ["Authorization"] = "Bearer " .. tok,
        }
      end
    end
  end
  if scenario == "add_member_small" then
    group_id = (read_lines(dir .. "/small.txt")[1]) or ""
  else
    group_id = (read_lines(dir .. "/group.txt")[1]) or ""
  end
  if scenario == "groups" then
    fixed = wrk.format("GET", base .. "/Groups?excludedAttributes=members", headers)
  elseif scenario == "deep_page" then
    fixed = wrk.format("GET", base .. "/Users?startIndex=" .. deep_start .. "&count=100", headers)
  end
end

local patch_active = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
  .. '"Operations":[{"op":"replace","path":"active","value":false}]}'

function request()
  if fixed then
    return fixed
  end
  counter = counter + 1
  if scenario == "filter" then
    local name = names[math.random(#names)]
    return wrk.format("GET", base .. "/Users?filter=userName%20eq%20%22" .. name .. "%22", headers)
  elseif scenario == "get" or scenario == "floor" then
    return wrk.format("GET", base .. "/Users/" .. ids[math.random(#ids)], headers)
  elseif scenario == "tenants" then
    local i = math.random(#tenant_ids)
    return wrk.format("GET", base .. "/Users/" .. tenant_ids[i], tenant_headers[i])
  elseif scenario == "patch_active" then
    return wrk.format("PATCH", base .. "/Users/" .. ids[math.random(#ids)], headers, patch_active)
  elseif scenario == "post" then
    local user = "post-" .. run_tag .. "-" .. tid .. "-" .. counter .. "@bench.example"
    local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"' .. user
      .. '","name":{"givenName":"Bench","familyName":"Post ' .. counter .. '"},'
      .. '"emails":[{"value":"' .. user .. '","type":"work","primary":true}],"active":true}'
    return wrk.format("POST", base .. "/Users", headers, body)
  elseif scenario:sub(1, 10) == "add_member" then
    -- Thread t takes spares t+1, t+1+n, t+1+2n, ...: every request adds a user that is not a
    -- member yet, until the spares run out (then it wraps and counts it).
    local i = tid + 1 + (counter - 1) * nthreads
    if i > #spares then
      wraps = wraps + 1
      i = ((i - 1) % #spares) + 1
    end
    local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
      .. '"Operations":[{"op":"add","path":"members","value":[{"value":"' .. spares[i] .. '"}]}]}'
    local path = base .. "/Groups/" .. group_id
    if scenario == "add_member_excl" then
      path = path .. "?excludedAttributes=members"
    end
    return wrk.format("PATCH", path, headers, body)
  end
  error("unknown SCENARIO " .. scenario)
end

function done(summary, latency, requests)
  local total_wraps = 0
  for _, t in ipairs(threads) do
    total_wraps = total_wraps + (t:get("wraps") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d wraps=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout, total_wraps))
end
