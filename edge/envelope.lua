-- The edge's Lua filter (edge/envelope.lua): correlation ids, response hygiene, and the REST
-- error envelope of CONTRACT.md "Errors". edge/envelope.py inserts the generated tables (from
-- common/errors.py and the descriptor set) at the GENERATED line.
--
-- It is the FIRST HTTP filter, so on the way out (filters run in reverse) it sees every response
-- last: transcoded service errors, Envoy's own local replies, CORS preflights, successes.
--
-- Request path:
--   * headers whose names gRPC metadata cannot carry (anything but [0-9a-z-_.]) are dropped;
--   * x-correlation-id = the client's (cleaned like common/interceptors.py: [A-Za-z0-9-_.:],
--     at most 128) or else Envoy's x-request-id UUID; set on the request (the service gets it as
--     gRPC metadata) and kept in dynamic metadata for the response;
--   * a query parameter that would set a field the path template or the body binds is refused
--     (x-edge-reject -> a 400 route; the reason lands in validation_messages);
--   * a success marked x-edge-not-modified by its service (If-None-Match named the current ETag)
--     leaves as 304 with no body (on the way out);
--   * GET /readyz is answered here from every service's /readyz (their metrics ports);
--   * native gRPC (content-type application/grpc) is marked x-edge-native-grpc -> a 404 route,
--     which Envoy answers as gRPC UNIMPLEMENTED: the services take gRPC on their own ports.
--
-- Response path, every response: drop grpc-* and x-envoy-* headers, set x-correlation-id, the
-- security headers, cache-control no-store unless set. Error responses (status >= 400):
--   * already an envelope (local_reply_config made it and marked it x-edge-envelope): keep it,
--     drop the marker, fill in what the reply could not know;
--   * a transcoded google.rpc.Status with a checkout.v1.ErrorDetail: the detail object becomes
--     "error", the HTTP status comes from the detail's code (HTTP_BY_CODE, so 402 and 410 are
--     possible), missing members are added with their zero values;
--   * anything else: a generic envelope chosen by HTTP status (GENERIC_BY_HTTP); for a client
--     error the gRPC message / Envoy's text goes in validation_messages, for a server error
--     nothing about internals is said.
--
-- Lua has no JSON library; the parsing below relies on facts about the transcoder's output:
-- `"details":[` only occurs structurally (inside a JSON string a quote is escaped), details is
-- the last field of google.rpc.Status, and each detail object begins with its "@type" member.

-- @@GENERATED@@

local META_NS = "checkout.edge"
local DETAIL_PREFIX = '{"@type":"type.googleapis.com/checkout.v1.ErrorDetail"'

local function clean_correlation_id(raw)
  if raw == nil then
    return ""
  end
  local cleaned = string.gsub(raw, "[^%w%-_%.:]", "")
  return string.sub(cleaned, 1, MAX_CORRELATION_ID)
end

-- For the rare response with no request behind it (Envoy refused the request line or headers
-- before any filter ran): not a secret, just unique enough to find the log line.
if os ~= nil and os.time ~= nil then
  math.randomseed(os.time() + math.floor((os.clock() or 0) * 1000000))
end
local function new_correlation_id()
  local id = string.gsub("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", "[xy]", function(ch)
    return string.format("%x", ch == "x" and math.random(0, 15) or math.random(8, 11))
  end)
  return id
end

local function json_escape(text)
  local escaped = string.gsub(text, '[%c"\\]', function(ch)
    if ch == '"' then
      return '\\"'
    elseif ch == "\\" then
      return "\\\\"
    elseif ch == "\n" then
      return "\\n"
    elseif ch == "\r" then
      return "\\r"
    elseif ch == "\t" then
      return "\\t"
    end
    return string.format("\\u%04x", string.byte(ch))
  end)
  return escaped
end

local function trim(text)
  local trimmed = string.gsub(text, "^%s+", "")
  trimmed = string.gsub(trimmed, "%s+$", "")
  return trimmed
end

-- The raw (still escaped) contents of the JSON string that starts right after position `first`
-- (the index of its opening quote), and the index of its closing quote.
local function json_string_at(text, first)
  local i = first + 1
  local n = #text
  while i <= n do
    local ch = string.sub(text, i, i)
    if ch == "\\" then
      i = i + 2
    elseif ch == '"' then
      return string.sub(text, first + 1, i - 1), i
    else
      i = i + 1
    end
  end
  return nil, nil
end

-- The first checkout.v1.ErrorDetail object of a transcoded google.rpc.Status, without "@type".
local function error_detail(raw)
  local _, list_start = string.find(raw, '"details":[', 1, true)
  if list_start == nil then
    return nil
  end
  local list = string.gsub(string.sub(raw, list_start + 1), "%]%s*}%s*$", "")
  local first = string.find(list, DETAIL_PREFIX, 1, true)
  if first == nil then
    return nil
  end
  local detail = string.sub(list, first + #DETAIL_PREFIX)
  -- another detail after this one? ',{"@type":"' can only be structural
  local next_detail = string.find(detail, '},{"@type":"', 1, true)
  if next_detail ~= nil then
    detail = string.sub(detail, 1, next_detail)
  end
  detail = trim(detail)
  if string.sub(detail, 1, 1) == "," then
    detail = "{" .. string.sub(detail, 2)
  elseif detail == "}" then
    detail = "{}"
  else
    return nil
  end
  if string.sub(detail, -1) ~= "}" then
    return nil
  end
  return detail
end

local function has_member(object, name)
  return string.find(object, '[{,]"' .. name .. '":') ~= nil
end

local function add_member(object, name, value_json)
  if has_member(object, name) then
    return object
  end
  local inner = string.sub(object, 2, -2)
  if trim(inner) == "" then
    return "{" .. '"' .. name .. '":' .. value_json .. "}"
  end
  return "{" .. inner .. ',"' .. name .. '":' .. value_json .. "}"
end

local function generic_error(status, correlation_id, validation_messages)
  local spec = GENERIC_BY_HTTP[status]
  if spec == nil then
    spec = status < 500 and GENERIC_CLIENT or GENERIC_SERVER
  end
  local messages = "[]"
  if validation_messages ~= nil and #validation_messages > 0 then
    messages = "[" .. table.concat(validation_messages, ",") .. "]"
  end
  return '{"code":' .. spec.code
    .. ',"message":' .. spec.message
    .. ',"validation_messages":' .. messages
    .. ',"correlation_id":"' .. correlation_id .. '"'
    .. ',"retryable":' .. spec.retryable
    .. ',"suggested_action":' .. spec.suggested_action
    .. "}"
end

-- (envelope body, http status) for an error response body `raw` that arrived with `status`.
local function envelope_for(raw, status, content_type, correlation_id)
  local detail = error_detail(raw)
  if detail ~= nil then
    detail = add_member(detail, "code", "0")
    detail = add_member(detail, "message", '""')
    detail = add_member(detail, "validation_messages", "[]")
    detail = add_member(detail, "correlation_id", '""')
    detail = add_member(detail, "retryable", "false")
    detail = add_member(detail, "suggested_action", '""')
    if correlation_id ~= "" then
      detail = string.gsub(detail, '([{,])"correlation_id":""', '%1"correlation_id":"' .. correlation_id .. '"', 1)
    end
    local code = tonumber(string.match(detail, '[{,]"code":(%-?%d+)'))
    local http = HTTP_BY_CODE[code] or status
    return '{"status":' .. http .. ',"success":false,"error":' .. detail .. "}", http
  end
  -- No checkout detail. A client error keeps what was said about it (a gRPC message or Envoy's
  -- text); a server error says nothing about internals.
  local said = nil
  if status < 500 then
    if string.find(content_type, "json", 1, true) then
      local _, key_end = string.find(raw, '^%s*{%s*"code"%s*:%s*%-?%d+%s*,%s*"message"%s*:%s*')
      if key_end ~= nil and string.sub(raw, key_end + 1, key_end + 1) == '"' then
        local text = json_string_at(raw, key_end + 1)
        if text ~= nil and text ~= "" then
          said = '"' .. text .. '"'
        end
      end
    elseif trim(raw) ~= "" then
      said = '"' .. json_escape(string.sub(trim(raw), 1, 1024)) .. '"'
    end
  end
  local messages = nil
  if said ~= nil then
    messages = { said }
  end
  return '{"status":' .. status .. ',"success":false,"error":' .. generic_error(status, correlation_id, messages) .. "}", status
end

local function percent_decode(text, keep_slash)
  local decoded = string.gsub(text, "%%(%x%x)", function(hex)
    local byte = tonumber(hex, 16)
    if keep_slash and byte == 47 then
      return "\1" -- an encoded "/" stays inside its path segment
    end
    return string.char(byte)
  end)
  return decoded
end

-- The transcoder lets a query parameter set a field that the path template or the body also
-- binds (GET /api/v1/cart/A?token=B reads cart B), in its proto or its JSON spelling (`?orderToken=`).
-- A query name is folded as edge/envelope.py's spelling_key folds the bound fields: no
-- underscores, lower case. The bound field such a parameter names, or nil.
local function query_overrides_binding(method, path)
  local question = string.find(path, "?", 1, true)
  if question == nil then
    return nil
  end
  local route_path = percent_decode(string.sub(path, 1, question - 1), true)
  local query = string.sub(path, question + 1)
  for _, rule in ipairs(PATH_BINDINGS) do
    if rule[1] == method and string.find(route_path, rule[2]) ~= nil then
      for pair in string.gmatch(query, "[^&]+") do
        local name = percent_decode(string.gsub(string.match(pair, "^[^=]*"), "%+", " "), false)
        local key = string.lower(string.gsub(string.match(name, "^[^.]*"), "_", ""))
        local field = rule[3][key]
        if field ~= nil then
          return name, field
        end
      end
    end
  end
  return nil
end

-- /readyz: every service's own /readyz (its metrics port), asked one after the other; 200 when
-- all are ready, else 503, the body naming each service's dependencies as the service reported them.
local function readiness_report(request_handle)
  local parts = {}
  local ready = true
  for _, entry in ipairs(READINESS) do
    local service, cluster = entry[1], entry[2]
    local state = '{"ready":false,"dependencies":{"process":"no metrics port configured"}}'
    if cluster ~= "" then
      local headers, body = request_handle:httpCall(cluster, {
        [":method"] = "GET", [":path"] = READYZ_PATH, [":authority"] = "readyz",
      }, "", 2500)
      local status = headers ~= nil and headers[":status"] or ""
      if (status == "200" or status == "503") and body ~= nil and string.sub(body, 1, 1) == "{" then
        state = body
      else
        state = '{"ready":false,"dependencies":{"process":"not answering"}}'
      end
      if status ~= "200" then
        ready = false
      end
    else
      ready = false
    end
    parts[#parts + 1] = '"' .. service .. '":' .. state
  end
  return ready, '{"ready":' .. tostring(ready) .. ',"services":{' .. table.concat(parts, ",") .. "}}"
end

-- HTTP allows header names that gRPC metadata does not ([0-9a-z-_.] only): the transcoder passes
-- every header on as metadata, and the service's gRPC server fails the call (500) on such a name.
-- No service reads such a header, so it is dropped here. Pseudo-headers (":path") are Envoy's own.
local function drop_headers_grpc_cannot_carry(headers)
  local drop = {}
  for name, _ in pairs(headers) do
    if string.sub(name, 1, 1) ~= ":" and string.find(name, "[^a-z0-9%-_%.]") ~= nil then
      drop[#drop + 1] = name
    end
  end
  for _, name in ipairs(drop) do
    headers:remove(name)
  end
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  drop_headers_grpc_cannot_carry(headers)
  -- The services serve gRPC on their own ports; this edge is REST only. A request that arrives
  -- as gRPC is marked here (any client-sent marker is dropped first) and refused by a route
  -- (404, which a gRPC client reads as UNIMPLEMENTED).
  headers:remove(NATIVE_GRPC_MARKER)
  headers:remove(REJECT_MARKER)
  headers:remove(READYZ_MARKER)
  local content_type = headers:get("content-type") or ""
  local native_grpc = string.sub(string.lower(content_type), 1, 16) == "application/grpc"
  if native_grpc then
    headers:replace(NATIVE_GRPC_MARKER, "1")
    request_handle:streamInfo():dynamicMetadata():set(META_NS, "native_grpc", "1")
  end
  local correlation_id = clean_correlation_id(headers:get("x-correlation-id"))
  if correlation_id == "" then
    correlation_id = clean_correlation_id(headers:get("x-request-id"))
  end
  headers:replace("x-correlation-id", correlation_id)
  request_handle:streamInfo():dynamicMetadata():set(META_NS, "correlation_id", correlation_id)

  local path = headers:get(":path") or ""
  local method = headers:get(":method") or ""
  if (path == READYZ_PATH or string.sub(path, 1, #READYZ_PATH + 1) == READYZ_PATH .. "?")
      and (method == "GET" or method == "HEAD") then
    headers:replace(READYZ_MARKER, "1") -- local_reply_config leaves this 503 as it is
    request_handle:streamInfo():dynamicMetadata():set(META_NS, "readyz", "1")
    local ready, report = readiness_report(request_handle)
    request_handle:respond({
      [":status"] = ready and "200" or "503", ["content-type"] = "application/json", ["cache-control"] = "no-store",
    }, report)
    return
  end

  if not native_grpc then
    local name, field = query_overrides_binding(headers:get(":method") or "", headers:get(":path") or "")
    if name ~= nil then
      -- refused by a route (400, in the envelope, the reason in validation_messages)
      headers:replace(REJECT_MARKER, "query parameter " .. clean_correlation_id(name) .. " may not set " .. field
        .. ", which the path or the body sets")
    end
  end
end

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  local correlation_id = ""
  local meta = response_handle:streamInfo():dynamicMetadata():get(META_NS)
  if meta ~= nil and meta["correlation_id"] ~= nil then
    correlation_id = meta["correlation_id"]
  end
  local request_seen = correlation_id ~= ""
  if not request_seen then
    correlation_id = new_correlation_id()
  end

  if meta ~= nil and meta["native_grpc"] ~= nil then
    -- refused with a gRPC status (UNIMPLEMENTED) that a gRPC client can read: leave it be
    headers:remove(ENVELOPE_MARKER)
    headers:replace("x-correlation-id", correlation_id)
    return
  end

  local drop = {}
  for name, _ in pairs(headers) do
    local lower = string.lower(name)
    if string.sub(lower, 1, 5) == "grpc-" or string.sub(lower, 1, 8) == "x-envoy-" then
      drop[#drop + 1] = name
    end
  end
  for _, name in ipairs(drop) do
    headers:remove(name)
  end
  headers:replace("x-correlation-id", correlation_id)
  for _, header in ipairs(SECURITY_HEADERS) do
    headers:replace(header[1], header[2])
  end
  if headers:get("cache-control") == nil then
    headers:add("cache-control", "no-store") -- API answers are per user; a page may say otherwise
  end

  if meta ~= nil and meta["readyz"] ~= nil then
    return -- the readiness report, 200 or 503, as it was made
  end

  local status = tonumber(headers:get(":status")) or 500
  local content_type = headers:get("content-type") or ""
  if status < 400 then
    if headers:get(NOT_MODIFIED_MARKER) ~= nil then
      -- the service found the client's copy current (If-None-Match): 304, no body
      headers:remove(NOT_MODIFIED_MARKER)
      headers:replace(":status", "304")
      headers:remove("content-type")
      headers:remove("content-length")
      local body = response_handle:body(true)
      if body ~= nil and body:length() > 0 then
        body:setBytes("")
      end
      return
    end
    if string.sub(content_type, 1, 16) == "application/grpc" then
      headers:replace("content-type", "application/json")
    end
    return
  end
  local marked = headers:get(ENVELOPE_MARKER) ~= nil
  if marked then
    headers:remove(ENVELOPE_MARKER)
  end

  local body = response_handle:body(true)
  headers = response_handle:headers() -- body() yields: handles taken before it are stale
  local raw = ""
  if body ~= nil and body:length() > 0 then
    raw = body:getBytes(0, body:length())
  end
  if marked then
    -- a local reply already in the envelope; an empty reply text left an empty message, and a
    -- request refused before this filter saw it has no correlation id yet
    local fixed, emptied = string.gsub(raw, '"validation_messages":%[""%]', '"validation_messages":[]', 1)
    local named = 0
    if not request_seen then
      fixed, named = string.gsub(fixed, '"correlation_id":[^,}]*', '"correlation_id":"' .. correlation_id .. '"', 1)
    end
    if emptied + named > 0 then
      body:setBytes(fixed)
      headers:replace("content-length", tostring(#fixed))
    end
    return
  end
  local envelope, http = envelope_for(raw, status, content_type, correlation_id)
  headers:replace(":status", tostring(http))
  headers:replace("content-type", "application/json")
  body:setBytes(envelope)
  headers:replace("content-length", tostring(#envelope))
end
