
-- Outbound federation: one queue per destination server, the fedsender's.
--
--   mx:fedq:dests            set: the destinations whose queue is not empty
--   mx:fedq:{<dest>}         list: what is to go to <dest>, in order:
--                            "p <event_id> <room_id>" (a PDU, read from
--                            the room when its transaction is made),
--                            "e <ms> <EDU JSON>" (an EDU, queued at ms,
--                            that may be dropped after a long outage),
--                            "k <ms> <EDU JSON>" (one that must be kept:
--                            to-device, device lists)
--   mx:fedq:{<dest>}:txn     hash: id, body, n: the transaction in flight,
--                            kept until <dest> answered it, so a retry
--                            (after a restart too) sends the same ID and
--                            the same content; n items of the list
--   mx:fedq:{<dest>}:seen    hash: source stream -> the last entry queued
--                            from it (a redelivered entry is not queued
--                            twice); `txn` the number of the last
--                            transaction made; `shed` the items dropped
--                            from a queue past its cap (below)
--   mx:fedq:max              string: the cap of a queue (items; default
--                            100,000), an operator's setting
--   mx:fedq:{<dest>}:retry   hash: at (ms: not before), delay (ms: the
--                            last backoff), since (ms of the first
--                            failure in a row)
--
-- The functions that queue touch keys of several destinations and of a
-- room in one call (see docs/redis.md: a single Redis allows it).

local FEDQ_PDUS = 50            -- the spec's limits per transaction
local FEDQ_EDUS = 100


local function fedq_server(user)
    return string.match(user, '^@[^:]*:(.+)$')
end


-- a stream entry ID "<ms>-<seq>" is after another
local function fedq_after(a, b)
    local am, as = string.match(a, '^(%d+)-(%d+)$')
    local bm, bs = string.match(b, '^(%d+)-(%d+)$')
    if not am or not bm then return true end
    am, bm = tonumber(am), tonumber(bm)
    if am ~= bm then return am > bm end
    return tonumber(as) > tonumber(bs)
end


-- A queue past its cap (`mx:fedq:max`, default 100,000 items: a server
-- away for long) is shed to nine tenths of it, oldest first: the EDUs that
-- may be dropped, and every PDU but the newest of its room.  That one is
-- enough: the destination fetches what comes before it (get_missing_events,
-- state_ids), as the spec's catch-up has it.  The transaction in flight
-- (the head of the queue) and the EDUs that must be kept are not touched.
local FEDQ_MAX = 100000

local function fedq_shed(q, max)
    local head = tonumber(redis.call('HGET', q .. ':txn', 'n') or '0')
    local items = redis.call('LRANGE', q, head, -1)
    local over = head + #items - math.floor(max * 9 / 10)
    if over <= 0 then return 0 end

    -- the newest PDU of each room stays
    local newest, room_seen = {}, {}
    for i = #items, 1, -1 do
        local room = string.match(items[i], '^p %S+ (%S+)$')
        if room and not room_seen[room] then
            room_seen[room] = true
            newest[i] = true
        end
    end

    local kept, shed = {}, 0
    for i, it in ipairs(items) do
        local kind = string.sub(it, 1, 1)
        if shed < over and kind ~= 'k' and not newest[i] then
            shed = shed + 1
        else
            kept[#kept + 1] = it
        end
    end

    if head > 0 then
        redis.call('LTRIM', q, 0, head - 1)
    else
        redis.call('DEL', q)
    end
    for i = 1, #kept, 1000 do
        redis.call('RPUSH', q, unpack(kept, i, math.min(i + 999, #kept)))
    end
    redis.call('HINCRBY', q .. ':seen', 'shed', shed)
    return shed
end


-- mx_fedq_put: queue an item for the servers of a room and/or others
--   KEYS[1]  mx:fedq:dests
--   ARGV     this server's name, the source stream, its entry ID, the
--            item ("p <event_id> <room_id>", "e <ms> <EDU>" or
--            "k <ms> <EDU>"),
--            room_id ('': none), then more destinations
--   reply:   the destinations it was queued for (this server never)
-- The room's servers are those with a joined member (mx:{<room>}:servers);
-- a member event also goes to its state_key's server (a member who just
-- left, was kicked or banned gets its leave; an invitee its invite).  An
-- entry queued before for a destination (the same stream, an ID not after
-- the last one queued) is not queued again.
redis.register_function{
    function_name = 'mx_fedq_put',
    callback = function(keys, a)
        local self, stream, id, item, room = a[1], a[2], a[3], a[4], a[5]
        local dests, seen = {}, {}
        local function add(d)
            if d and d ~= '' and d ~= self and not seen[d] then
                seen[d] = true
                dests[#dests + 1] = d
            end
        end
        if room ~= '' then
            local servers = redis.call('HKEYS', room_servers_key(room))
            for _, s in ipairs(servers) do add(s) end
            local eid = string.match(item, '^p (%S+) ')
            if eid then
                local pdu = redis.call('HGET', 'mx:{' .. room .. '}:pdu', eid)
                local ok, ev = pcall(cjson.decode, pdu or '')
                if ok and type(ev) == 'table' and ev.type == 'm.room.member'
                   and type(ev.state_key) == 'string' then
                    add(fedq_server(ev.state_key))
                end
            end
        end
        for i = 6, #a do add(a[i]) end

        local max = tonumber(redis.call('GET', 'mx:fedq:max') or '')
                    or FEDQ_MAX
        local out = {}
        for _, d in ipairs(dests) do
            local q = 'mx:fedq:{' .. d .. '}'
            local last = redis.call('HGET', q .. ':seen', stream)
            if not last or fedq_after(id, last) then
                redis.call('HSET', q .. ':seen', stream, id)
                if redis.call('RPUSH', q, item) > max then
                    fedq_shed(q, max)
                end
                redis.call('SADD', keys[1], d)
                out[#out + 1] = d
            end
        end
        return out
    end
}


-- mx_fedq_txn: the destination's transaction: the one in flight, else a
-- new one of the head of its queue (at most 50 PDUs and 100 EDUs)
--   KEYS[1]  mx:fedq:{<dest>}
--   ARGV     this server's name, now (ms), drop EDUs queued before this
--            (ms, 0: none; the kept kinds never are)
--   reply:   {} when there is nothing to send; {txn_id, body}
redis.register_function{
    function_name = 'mx_fedq_txn',
    callback = function(keys, a)
        local tk = keys[1] .. ':txn'
        local t = redis.call('HMGET', tk, 'id', 'body')
        if t[1] then return { t[1], t[2] } end

        local items = redis.call('LRANGE', keys[1], 0,
                                 FEDQ_PDUS + FEDQ_EDUS - 1)
        if #items == 0 then return {} end

        local cutoff = tonumber(a[3])
        local pdus, edus, n = {}, {}, 0
        for _, it in ipairs(items) do
            local kind = string.sub(it, 1, 1)
            if kind == 'p' then
                if #pdus == FEDQ_PDUS then break end
                local eid, room = string.match(it, '^p (%S+) (%S+)$')
                local pdu = eid and redis.call('HGET',
                                               'mx:{' .. room .. '}:pdu', eid)
                if pdu then pdus[#pdus + 1] = pdu end
            else
                if #edus == FEDQ_EDUS then break end
                local ms, edu = string.match(it, '^. (%d+) (.*)$')
                if edu and (kind == 'k' or tonumber(ms) >= cutoff) then
                    edus[#edus + 1] = edu
                end
            end
            n = n + 1
        end

        if #pdus == 0 and #edus == 0 then
            redis.call('LTRIM', keys[1], n, -1)
            return {}
        end

        local num = redis.call('HINCRBY', keys[1] .. ':seen', 'txn', 1)
        local id = a[2] .. '.' .. num
        local body = '{"edus":[' .. table.concat(edus, ',') .. '],"origin":'
                     .. cjson.encode(a[1]) .. ',"origin_server_ts":' .. a[2]
                     .. ',"pdus":[' .. table.concat(pdus, ',') .. ']}'
        redis.call('HSET', tk, 'id', id, 'body', body, 'n', n)
        return { id, body }
    end
}


-- mx_fedq_done: the destination answered a transaction (200, or a refusal
-- that retrying will not change): its items leave the queue, the backoff
-- ends
--   KEYS[1]  mx:fedq:{<dest>}
--   ARGV     dest, txn_id
--   reply:   the items left in the queue
redis.register_function{
    function_name = 'mx_fedq_done',
    callback = function(keys, a)
        local tk = keys[1] .. ':txn'
        local t = redis.call('HMGET', tk, 'id', 'n')
        if t[1] == a[2] then
            redis.call('LTRIM', keys[1], tonumber(t[2]), -1)
            redis.call('DEL', tk)
        end
        redis.call('DEL', keys[1] .. ':retry')
        local left = redis.call('LLEN', keys[1])
        if left == 0 then
            redis.call('SREM', 'mx:fedq:dests', a[1])
        end
        return left
    end
}


-- mx_fedq_retry: a transaction failed: not again before now + delay
--   KEYS[1]  mx:fedq:{<dest>}
--   ARGV     now (ms), delay (ms, the fedsender's choice with jitter)
--   reply:   'OK'
redis.register_function{
    function_name = 'mx_fedq_retry',
    callback = function(keys, a)
        local rk = keys[1] .. ':retry'
        local now, delay = tonumber(a[1]), tonumber(a[2])
        redis.call('HSETNX', rk, 'since', now)
        redis.call('HSET', rk, 'at', now + delay, 'delay', delay)
        return 'OK'
    end
}


-- mx_fedq_list: the queues, for the fedsender's start and for operators
--   KEYS     none
--   ARGV     none
--   reply:   {dest, items queued, txn in flight ('' none), retry at (ms,
--            0: none), last delay (ms), failing since (ms, 0: not)}...
redis.register_function{
    function_name = 'mx_fedq_list',
    callback = function()
        local out = {}
        for _, d in ipairs(redis.call('SMEMBERS', 'mx:fedq:dests')) do
            local q = 'mx:fedq:{' .. d .. '}'
            local r = redis.call('HMGET', q .. ':retry', 'at', 'delay', 'since')
            out[#out + 1] = { d, redis.call('LLEN', q),
                              redis.call('HGET', q .. ':txn', 'id') or '',
                              tonumber(r[1] or '0'), tonumber(r[2] or '0'),
                              tonumber(r[3] or '0') }
        end
        return out
    end,
    flags = { 'no-writes' }
}
