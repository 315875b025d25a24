-- miltertest script: opens many connections to triage's milter at once and walks one message
-- through each of them in lockstep, so every connection is open and mid-message at the same
-- time. Prints "<k> <eom reply> <X-Triage-Queue>" per connection, then "done <count>".
--
-- Variables (miltertest -D name=value):
--   socket        inet:PORT@127.0.0.1 or unix:/path (required)
--   connections   how many connections (default 32)
--   rounds        messages per connection, one after another (default 2)

local n = tonumber(connections or "32")
local rounds = tonumber(rounds or "2")
local conns = {}
for k = 1, n do
  local conn = mt.connect(socket, 40, 0.25)
  if conn == nil then error("cannot connect (connection " .. k .. ")") end
  conns[k] = conn
end

local subjects = {
  "Pedido no recibido - Protección al Comprador",
  "Rechnung falsch, bitte Gutschrift",
  "Trustbadge wird im Checkout nicht angezeigt",
  "Bitte die negative Bewertung entfernen",
}

for round = 1, rounds do
  for k, conn in ipairs(conns) do
    mt.macro(conn, SMFIC_MAIL, "i", "C" .. k .. "R" .. round)
    assert(mt.mailfrom(conn, "<sender" .. k .. "@example.com>") == nil)
  end
  for k, conn in ipairs(conns) do
    assert(mt.header(conn, "From", "sender" .. k .. "@example.com") == nil)
    assert(mt.header(conn, "Subject", subjects[(k + round) % #subjects + 1]) == nil)
    assert(mt.header(conn, "X-Triage-Queue", "legal") == nil)
  end
  for _, conn in ipairs(conns) do
    assert(mt.eoh(conn) == nil)
  end
  for k, conn in ipairs(conns) do
    assert(mt.bodystring(conn, "Hallo,\r\nich habe eine Frage (" .. k .. ").\r\n") == nil)
  end
  for k, conn in ipairs(conns) do
    assert(mt.eom(conn) == nil)
    local queue = mt.getheader(conn, "X-Triage-Queue", 0) or "-"
    local forged = mt.eom_check(conn, MT_HDRDELETE, "X-Triage-Queue", 1) and "deleted" or "kept"
    print(k .. " " .. string.char(mt.getreply(conn)) .. " " .. queue .. " " .. forged)
  end
end

for _, conn in ipairs(conns) do
  mt.disconnect(conn)
end
print("done " .. n * rounds)
