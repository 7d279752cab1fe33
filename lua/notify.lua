
-- Notifications: what users' push rules said of the events of a room, the
-- counts of unread ones /sync gives, and the list of GET /notifications.
--
--   mx:{<room_id>}:notifs:<user_id>  sorted set: the events that notified
--                                    the user, by stream position; member
--                                    "<event_id>\31<thread>\31<highlight
--                                    0/1>\31<actions JSON>" (thread: the
--                                    root's event ID, '' for the main
--                                    timeline); the newest NTF_CAP kept
--   mx:{<room_id>}:sentpos           hash: "<user_id>\31<thread>" -> the
--                                    position of the user's latest event
--                                    in that thread ('main' for the main
--                                    timeline): sending is reading
--   mx:pushrules:ver                 integer: counts changes of anyone's
--                                    push rules
--   mx:pushrules:changed             sorted set: user_id by the count of
--                                    their rules' latest change, so the
--                                    syncer's cache of rules knows what
--                                    to forget (lua/pushrules.lua writes)
--
-- The syncer evaluates the rules (core/mx_pusheval.c) of every local member
-- but the sender, and stores the verdicts with mx_notify_put *before* it
-- gives the event its stream position: a /sync that sees the event sees
-- its notifications.  The position is not known yet then; the score is a
-- lower bound of it, mx:stream + 1, and since events get their positions
-- from the syncer alone, one at a time, no event of any room gets a
-- position between that bound and the event's own: against every event
-- position (the only thing receipts point at) the bound compares as the
-- position would.
--
-- A user has read a thread up to the later of their unthreaded receipt
-- (m.read or m.read.private, whichever is further), their receipts in
-- that thread, and their own latest event in it.  Unread notifications are
-- those after that point.

local NTF_CAP = 1000

local function ntf_key(room, suffix)
    return 'mx:{' .. room .. '}:' .. suffix
end


-- the furthest position a user's receipts in a thread point at (0: none);
-- thread '' is the unthreaded receipt
local function receipt_pos(room, user, thread)
    local r = redis.call('HMGET', ntf_key(room, 'receipts'),
                         'm.read\31' .. user .. '\31' .. thread,
                         'm.read.private\31' .. user .. '\31' .. thread)
    local ids = {}
    for i = 1, 2 do
        if r[i] then
            local ok, v = pcall(cjson.decode, r[i])
            if ok and type(v) == 'table' and type(v.event_id) == 'string' then
                ids[#ids + 1] = v.event_id
            end
        end
    end
    local best = 0
    if #ids > 0 then
        for _, p in ipairs(redis.call('HMGET', ntf_key(room, 'spos'),
                                      unpack(ids))) do
            p = tonumber(p) or 0
            if p > best then best = p end
        end
    end
    return best
end


-- how far a user has read a room: a function of the thread ('' for the
-- main timeline) giving the position read up to, and the least of them
-- all (the unthreaded receipt)
local function read_points(room, user)
    local base = receipt_pos(room, user, '')
    local cache = {}
    return function(thread)
        local t = thread == '' and 'main' or thread
        local p = cache[t]
        if not p then
            p = math.max(base, receipt_pos(room, user, t),
                         tonumber(redis.call('HGET', ntf_key(room, 'sentpos'),
                                             user .. '\31' .. t) or '0'))
            cache[t] = p
        end
        return p
    end, base
end


-- a user's unread notifications in a room: {notification_count,
-- highlight_count, {thread root, notification_count, highlight_count,
-- ...}}; by threads (the main timeline's counts first, each thread's
-- apart), or all counted together
local function unread_counts(room, user, threads)
    local readp, base = read_points(room, user)
    local entries = redis.call('ZRANGEBYSCORE',
                               ntf_key(room, 'notifs:' .. user),
                               '(' .. base, '+inf', 'WITHSCORES')
    local n, h, per, order = 0, 0, {}, {}
    for i = 1, #entries, 2 do
        local thread, hl = string.match(entries[i],
                                        '^[^\31]*\31([^\31]*)\31(%d)')
        if thread and tonumber(entries[i + 1]) > readp(thread) then
            if threads and thread ~= '' then
                local c = per[thread]
                if not c then
                    c = { 0, 0 }
                    per[thread] = c
                    order[#order + 1] = thread
                end
                c[1] = c[1] + 1
                if hl == '1' then c[2] = c[2] + 1 end
            else
                n = n + 1
                if hl == '1' then h = h + 1 end
            end
        end
    end
    local t = {}
    for _, th in ipairs(order) do
        t[#t + 1] = th
        t[#t + 1] = per[th][1]
        t[#t + 1] = per[th][2]
    end
    return { n, h, t }
end


-- mx_notify_room: what the syncer needs of a room to evaluate push rules
--   KEYS[1]  mx:{<room_id>}:state
--   ARGV     room_id, ':' .. the server name (what local user IDs end with)
--   reply:   {joined members, create event ID, its PDU, power levels event
--            ID, its PDU, then user_id, display name ('' for none) of each
--            local joined member}; '' for an event the room lacks
redis.register_function{
    function_name = 'mx_notify_room',
    callback = function(keys, a)
        local room, suffix = a[1], a[2]
        local pk = ntf_key(room, 'pdu')
        local function state(t, sk)
            local id = redis.call('HGET', keys[1], t .. '\31' .. sk)
            if not id then return '', '' end
            return id, redis.call('HGET', pk, id) or ''
        end
        local cid, cpdu = state('m.room.create', '')
        local pid, ppdu = state('m.room.power_levels', '')
        local out = { 0, cid, cpdu, pid, ppdu }
        local m = redis.call('HGETALL', ntf_key(room, 'members'))
        local joined = 0
        for i = 1, #m, 2 do
            if m[i + 1] == 'join' then
                joined = joined + 1
                if #m[i] > #suffix
                   and string.sub(m[i], -#suffix) == suffix then
                    local _, pdu = state('m.room.member', m[i])
                    local ok, ev = pcall(cjson.decode, pdu)
                    local dn = ''
                    if ok and type(ev) == 'table'
                       and type(ev.content) == 'table'
                       and type(ev.content.displayname) == 'string' then
                        dn = ev.content.displayname
                    end
                    out[#out + 1] = m[i]
                    out[#out + 1] = dn
                end
            end
        end
        out[1] = joined
        return out
    end,
    flags = { 'no-writes' }
}


-- mx_notify_put: the notifications of an event, before its stream position
--   KEYS[1]  mx:{<room_id>}:spos
--   ARGV     room_id, event_id, thread ('' for the main timeline), the
--            sender when local and the event no state event ('' otherwise:
--            whose read point it moves), then user_id, highlight
--            ('0'/'1'), actions (JSON) for each user it notifies
--   reply:   the position the notifications were stored at; 0 when the
--            event has its position already (this was done before it got
--            it) or was soft-failed, rejected or an outlier: nothing done
-- Delivery is at least once: a repeat stores the same members (ZADD NX
-- keeps the first score) and moves no read point backwards.
redis.register_function{
    function_name = 'mx_notify_put',
    callback = function(keys, a)
        local room, event_id, thread, sender = a[1], a[2], a[3], a[4]
        if redis.call('HEXISTS', keys[1], event_id) == 1 then
            return 0
        end
        local meta = redis.call('HGET', ntf_key(room, 'meta'), event_id)
        if meta and string.match(meta, '^%S+ %S+ %S+ %a') then
            return 0
        end
        local pos = tonumber(redis.call('GET', 'mx:stream') or '0') + 1
        if sender ~= '' then
            local k = ntf_key(room, 'sentpos')
            local f = sender .. '\31' .. (thread == '' and 'main' or thread)
            if tonumber(redis.call('HGET', k, f) or '0') < pos then
                redis.call('HSET', k, f, pos)
            end
        end
        -- nobody hears of the users they ignore
        local from
        if #a >= 5 and redis.call('SCARD', 'mx:ignorers') > 0 then
            local ok, ev = pcall(cjson.decode,
                redis.call('HGET', ntf_key(room, 'pdu'), event_id) or '')
            from = ok and type(ev) == 'table' and type(ev.sender) == 'string'
                   and ev.sender or nil
        end
        for i = 5, #a - 2, 3 do
            if not (from and redis.call('SISMEMBER', 'mx:{' .. a[i] ..
                                        '}:ignored', from) == 1) then
                local k = ntf_key(room, 'notifs:' .. a[i])
                redis.call('ZADD', k, 'NX', pos, event_id .. '\31' .. thread
                           .. '\31' .. a[i + 1] .. '\31' .. a[i + 2])
                if redis.call('ZCARD', k) > NTF_CAP + NTF_CAP / 10 then
                    redis.call('ZREMRANGEBYRANK', k, 0, -(NTF_CAP + 1))
                end
            end
        end
        return pos
    end
}


-- mx_notifications: GET /notifications, newest first, across the rooms the
-- user has (or had, until forgotten)
--   KEYS[1]  mx:{<user_id>}:rooms
--   ARGV     user_id, from (a position: older than it; '' for the
--            newest), limit, only ('highlight' or '')
--   reply:   {next (the position to go on from, '' at the end), {room_id,
--            event_id, PDU, actions JSON, read (0/1)}...}
redis.register_function{
    function_name = 'mx_notifications',
    callback = function(keys, a)
        local user, limit = a[1], tonumber(a[3])
        local from = a[2] ~= '' and ('(' .. a[2]) or '+inf'
        local hl_only = a[4] == 'highlight'
        local rooms = redis.call('HGETALL', keys[1])
        local found = {}
        for i = 1, #rooms, 2 do
            local room = rooms[i]
            local k = ntf_key(room, 'notifs:' .. user)
            local max, got, off = from, 0, 0
            -- at most limit + 1 of each room: enough to know there is more
            while got <= limit do
                local e = redis.call('ZREVRANGEBYSCORE', k, max, '-inf',
                                     'WITHSCORES', 'LIMIT', off, limit + 1)
                for j = 1, #e, 2 do
                    local id, thread, hl, actions = string.match(e[j],
                        '^([^\31]*)\31([^\31]*)\31(%d)\31(.*)$')
                    if id and (hl == '1' or not hl_only) and got <= limit
                       and redis.call('HEXISTS',
                                      ntf_key(room, 'redactions'), id) == 0
                    then
                        found[#found + 1] = { tonumber(e[j + 1]), room, id,
                                              thread, actions }
                        got = got + 1
                    end
                end
                if #e / 2 < limit + 1 then break end
                off = off + #e / 2
            end
        end
        table.sort(found, function(x, y)
            if x[1] ~= y[1] then return x[1] > y[1] end
            return x[2] < y[2]
        end)
        local out = { '' }
        local readers = {}
        for i = 1, math.min(limit, #found) do
            local f = found[i]
            local rp = readers[f[2]]
            if not rp then
                rp = read_points(f[2], user)
                readers[f[2]] = rp
            end
            out[#out + 1] = { f[2], f[3],
                              redis.call('HGET', ntf_key(f[2], 'pdu'), f[3])
                              or '',
                              f[5], f[1] <= rp(f[4]) and 1 or 0 }
        end
        if #found > limit then
            out[1] = tostring(found[limit][1])
        end
        return out
    end,
    flags = { 'no-writes' }
}
