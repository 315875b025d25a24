-- miltertest script: sends RFC 5322 files to triage's milter the way Postfix does, one
-- connection, one message after another, and prints what came back, one fact per line:
--
--   <n> reply <stage> <char>        the milter's reply ('c' continue, 's' skip, ...)
--   <n> added <Name> <value>        an X-Triage-* header added at end of message
--   <n> forged <sent> <deleted>     inbound X-Triage-* headers sent, and deleted by the milter
--   <n> rcpt-deleted <addr>         an envelope recipient the milter removed
--   <n> rcpt-added <addr>           an envelope recipient the milter added
--   done <count>
--
-- Variables (miltertest -D name=value):
--   socket   inet:PORT@127.0.0.1 or unix:/path (required)
--   files    the messages, separated by '|' (required)
--   rcpts    envelope recipients, separated by '|' (default <support@example.com>)
--   added    candidate recipients to look for among additions, separated by '|'

local function split(s, sep)
  local out = {}
  if s == nil or s == "" then return out end
  for part in (s .. sep):gmatch("(.-)" .. sep:gsub("%p", "%%%0")) do
    table.insert(out, part)
  end
  return out
end

local function read_all(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  return data
end

-- Splits a message into header fields and body as an MTA does: folded lines join their
-- header with a newline (Postfix's form), the body starts after the first empty line, and a
-- first line that is not a header field makes the whole input body.
local function parse(raw)
  local headers, body = {}, raw
  local first = raw:match("^([^\r\n]*)")
  if not first:match("^[!-9;-~]+:") then
    return headers, body
  end
  local pos = 1
  while pos <= #raw do
    local line, nl = raw:match("^([^\n]*)(\n?)", pos)
    pos = pos + #line + #nl
    line = line:gsub("\r$", "")
    if line == "" then
      body = raw:sub(pos)
      return headers, body
    end
    if line:match("^[ \t]") and #headers > 0 then
      headers[#headers].value = headers[#headers].value .. "\n" .. line
    else
      local name, value = line:match("^([!-9;-~]+):[ \t]*(.*)$")
      if name then
        table.insert(headers, { name = name, value = value })
      end
    end
    if nl == "" then break end
  end
  return headers, ""
end

local names = {
  "X-Triage-Queue", "X-Triage-Confidence", "X-Triage-Destination", "X-Triage-Needs-Review",
  "X-Triage-Ruleset", "X-Triage-Note", "X-Triage-Error", "X-Triage-Original-Recipient",
}

local conn = mt.connect(socket, 40, 0.25)
if conn == nil then error("cannot connect to " .. socket) end
local rcpts = split(rcpts or "<support@example.com>", "|")
local candidates = split(added or "", "|")
local tmp = os.tmpname()

for n, file in ipairs(split(files, "|")) do
  local function say(...) print(n .. " " .. table.concat({ ... }, " ")) end
  local function reply(stage) say("reply", stage, string.char(mt.getreply(conn))) end
  local headers, body = parse(read_all(file))

  mt.macro(conn, SMFIC_MAIL, "i", "TEST" .. n)
  assert(mt.mailfrom(conn, "<sender@example.com>") == nil, "mailfrom")
  reply("mail")
  if not mt.test_option(conn, SMFIP_NORCPT) then
    for _, r in ipairs(rcpts) do
      assert(mt.rcptto(conn, r) == nil, "rcptto")
      reply("rcpt")
    end
  end
  -- Forged headers, grouped by name without regard to case, as the MTA counts them.
  local groups, order, forged = {}, {}, 0
  for _, h in ipairs(headers) do
    assert(mt.header(conn, h.name, h.value) == nil, "header")
    local lower = h.name:lower()
    if lower:sub(1, 9) == "x-triage-" then
      forged = forged + 1
      if groups[lower] == nil then
        groups[lower] = { name = h.name, count = 0 }
        table.insert(order, lower)
      end
      groups[lower].count = groups[lower].count + 1
    end
  end
  assert(mt.eoh(conn) == nil, "eoh")
  reply("eoh")
  if #body > 0 then
    -- Postfix sends the body with CRLF line ends.
    local f = assert(io.open(tmp, "wb"))
    f:write((body:gsub("\r?\n", "\r\n")))
    f:close()
    assert(mt.bodyfile(conn, tmp) == nil, "bodyfile")
    reply("body")
  end
  assert(mt.eom(conn) == nil, "eom")
  reply("eom")

  for _, name in ipairs(names) do
    local i = 0
    while true do
      local value = mt.getheader(conn, name, i)
      if value == nil then break end
      say("added", name, value)
      i = i + 1
    end
  end
  local deleted = 0
  for _, lower in ipairs(order) do
    local g = groups[lower]
    for i = 1, g.count do
      if mt.eom_check(conn, MT_HDRDELETE, g.name, i) then deleted = deleted + 1 end
    end
  end
  say("forged", forged, deleted)
  for _, r in ipairs(rcpts) do
    if mt.eom_check(conn, MT_RCPTDELETE, r) then say("rcpt-deleted", r) end
  end
  for _, r in ipairs(candidates) do
    if mt.eom_check(conn, MT_RCPTADD, r) then say("rcpt-added", r) end
  end
end

os.remove(tmp)
mt.disconnect(conn)
print("done " .. #split(files, "|"))
