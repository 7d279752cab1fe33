
-- Rooms: events, state, forward extremities, memberships.
--
--   mx:{<room_id>}:room          hash: version, pos (events stored so far),
--                                sg (last state group number), cur_sg
--                                (the group of the current state), depth
--                                (greatest depth stored)
--   mx:{<room_id>}:pdu           hash: event_id -> the PDU, as received
--   mx:{<room_id>}:meta          hash: event_id -> "<pos> <sg> <depth> <flags>"
--                                sg: the state group after the event;
--                                flags: '-' or letters: r rejected,
--                                s soft-failed, o outlier
--   mx:{<room_id>}:sg:<n>        hash: a state group: "<type>\31<state_key>"
--                                -> event_id ('' when the key is gone), and
--                                "\0p" -> the parent group (absent for a
--                                full snapshot), "\0n" -> how many entries
--                                the chain down to the snapshot holds
--   mx:{<room_id>}:state         hash: the current state, in full
--   mx:{<room_id>}:extrem        set: forward extremities
--   mx:{<room_id>}:members       hash: user_id -> membership, current
--   mx:{<room_id>}:redactions    hash: event_id -> the redaction of it
--   mx:eventroom                 hash: event_id -> room_id, every room's
--
-- The roomserver is the only writer of these (mx_room_store); everything
-- else reads.  Every function is called with mx:{<room_id>}:room as
-- KEYS[1] and touches only keys of that room's hash tag (mx_room_store
-- also mx:output and mx:eventroom).

local SEP = '\31'

local function rkey(room, suffix)
    return 'mx:{' .. room .. '}:' .. suffix
end


-- an event's own rows: its PDU, its meta entry, its room; the room's
-- count of events stored
local function put_event(roomkey, room, id, pdu, pos, sg, depth, flags)
    redis.call('HSET', roomkey, 'pos', pos)
    redis.call('HSET', rkey(room, 'pdu'), id, pdu)
    redis.call('HSET', rkey(room, 'meta'), id, pos .. ' ' .. sg .. ' ' .. depth .. ' ' .. flags)
    -- which room an event is in: GET /_matrix/federation/v1/event
    -- names only the event (room IDs are not in v3+ event IDs)
    redis.call('HSET', 'mx:eventroom', id, room)
end


-- mx_room_store: store one event the roomserver has decided on, and append
-- its entry to the output log unless it was rejected
--   KEYS[1]  mx:{<room_id>}:room
--   KEYS[2]  mx:output
--   ARGV     room_id, event_id, pdu, depth, flags ('-' or letters),
--            sg after the event ('+<n>' = new group n as given below,
--            else a number), new group: parent ('' = snapshot),
--            chain count, entries as "k1\31v1\30k2\31v2..." (key
--            "<type>\31<state_key>"; value '' for gone),
--            current state changes in the same form ('' for none),
--            the forward extremities' change, "\30"-separated: the
--            event that joins them, then those it replaces ('' = none),
--            version (set on the first event), redacts ('' or event_id),
--            cur_sg: '=' this event's group is now the current state's,
--            a number, or '' to leave it; then for the output entry:
--            origin, reply, req ('' for none); then the event's position
--            in the room (the roomserver, the only writer, numbers
--            positions and groups, so it need not wait for this reply)
--   reply:   {pos, sg, 0} of the stored event; an event stored before
--            gives {its old pos, its old sg, 1} and changes nothing
redis.register_function{
    function_name = 'mx_room_store',
    callback = function(keys, a)
        local room, id = a[1], a[2]
        local meta = rkey(room, 'meta')
        local old = redis.call('HGET', meta, id)
        if old then
            local pos, sg = string.match(old, '^(%d+) (%d+)')
            return { tonumber(pos), tonumber(sg), 1 }
        end

        if a[12] ~= '' then
            redis.call('HSETNX', keys[1], 'version', a[12])
        end

        local sg = a[6]
        if string.sub(sg, 1, 1) == '+' then
            sg = string.sub(sg, 2)
            redis.call('HSET', keys[1], 'sg', sg)
            local gk = rkey(room, 'sg:' .. sg)
            if a[7] ~= '' then
                redis.call('HSET', gk, '\0p', a[7], '\0n', a[8])
            else
                redis.call('HSET', gk, '\0n', a[8])
            end
            for entry in string.gmatch(a[9], '[^\30]+') do
                local k, v = string.match(entry, '^(.*)\31([^\31]*)$')
                if k then redis.call('HSET', gk, k, v) end
            end
        end

        local pos = tonumber(a[18])
        local depth = tonumber(a[4])
        put_event(keys[1], room, id, a[3], pos, sg, a[4], a[5])

        -- the output entry: the syncer's and the fedsender's, which carries
        -- where to answer the sender
        local function output()
            local f = { 'kind', 'event', 'room', room, 'event_id', id,
                        'pos', pos, 'changes', a[10], 'event', a[3] }
            if a[15] ~= '' then
                f[#f + 1] = 'origin'
                f[#f + 1] = a[15]
            end
            if a[16] ~= '' then
                f[#f + 1] = 'reply'
                f[#f + 1] = a[16]
                f[#f + 1] = 'req'
                f[#f + 1] = a[17]
            end
            -- no MAXLEN: the consumers trim what every group has read, so
            -- a consumer that is down loses nothing
            redis.call('XADD', keys[2], '*', unpack(f))
            return { pos, tonumber(sg), 0 }
        end

        if string.find(a[5], 'r', 1, true) then
            return { pos, tonumber(sg), 0 }   -- rejected: nothing else
        end
        if string.find(a[5], 'o', 1, true) then
            -- an outlier (the state and auth chain a join brought) changes
            -- nothing and is nobody's to see or send: no output entry
            return { pos, tonumber(sg), 0 }
        end

        if depth > tonumber(redis.call('HGET', keys[1], 'depth') or '0') then
            redis.call('HSET', keys[1], 'depth', depth)
        end

        if a[10] ~= '' then
            local st = rkey(room, 'state')
            local mk = rkey(room, 'members')
            for entry in string.gmatch(a[10], '[^\30]+') do
                local k, v = string.match(entry, '^(.*)\31([^\31]*)$')
                if k then
                    if v == '' then
                        redis.call('HDEL', st, k)
                    else
                        redis.call('HSET', st, k, v)
                    end
                    local t, skey = string.match(k, '^(.*)\31(.*)$')
                    if t == 'm.room.member' then
                        local m = ''
                        if v ~= '' then
                            local pdu = redis.call('HGET', rkey(room, 'pdu'), v)
                            if pdu then
                                local ok, ev = pcall(cjson.decode, pdu)
                                if ok and type(ev.content) == 'table'
                                   and type(ev.content.membership) == 'string' then
                                    m = ev.content.membership
                                end
                            end
                        end
                        -- (made from the members first in an older room)
                        local sk = room_servers_key(room)
                        local was = redis.call('HGET', mk, skey)
                        if m == '' then
                            redis.call('HDEL', mk, skey)
                        else
                            redis.call('HSET', mk, skey, m)
                        end
                        -- the servers with a joined member: where the
                        -- room's events and EDUs go
                        if (was == 'join') ~= (m == 'join') then
                            local srv = string.match(skey, '^@[^:]*:(.+)$')
                            if srv then
                                local n = redis.call('HINCRBY', sk, srv,
                                                     m == 'join' and 1 or -1)
                                if n <= 0 then redis.call('HDEL', sk, srv) end
                            end
                        end
                    end
                end
            end
        end

        if a[14] == '=' then
            redis.call('HSET', keys[1], 'cur_sg', sg)
        elseif a[14] ~= '' then
            redis.call('HSET', keys[1], 'cur_sg', a[14])
        end

        if a[11] ~= '' then
            local ek = rkey(room, 'extrem')
            local first = true
            for e in string.gmatch(a[11], '[^\30]+') do
                redis.call(first and 'SADD' or 'SREM', ek, e)
                first = false
            end
        end

        if a[13] ~= '' then
            redis.call('HSETNX', rkey(room, 'redactions'), a[13], id)
        end

        return output()
    end
}


-- mx_room_outliers: store events as outliers (flag o, state group 0), as
-- mx_room_store does one: the state and auth chain a join through another
-- server brought, many a call rather than a call each
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, version (set on the first event), then for each
--            event: event_id, pdu, depth, position in the room
--   reply:   how many were new (one stored before is left as it is)
redis.register_function{
    function_name = 'mx_room_outliers',
    callback = function(keys, a)
        local room = a[1]
        local meta = rkey(room, 'meta')
        local n = 0
        if a[2] ~= '' then
            redis.call('HSETNX', keys[1], 'version', a[2])
        end
        for i = 3, #a - 3, 4 do
            if redis.call('HEXISTS', meta, a[i]) == 0 then
                put_event(keys[1], room, a[i], a[i + 1], tonumber(a[i + 3]), '0',
                          a[i + 2], 'o')
                n = n + 1
            end
        end
        return n
    end
}


-- mx_room_backfill: store history another server gave (backfill) below
-- the room's timeline.  Each event is kept as an outlier for the room's
-- state (flag o: no state group, no current state, no extremity, no
-- output entry) and marked h (historical): it takes a timeline position
-- below the room's lowest, so /messages backwards goes on into it.  The
-- events come oldest first and get increasing positions, all below those
-- there (negative ones: stream positions start at 1); an event in the
-- timeline already keeps its place, an outlier (the join's state and auth
-- chain) is placed.  A history_visibility event records the visibility
-- from its position on (mx:{<room_id>}:hvhist), as mx_sync_position does.
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, then for each event: event_id, pdu, depth, position
--            in the room (the roomserver's count, as mx_room_outliers)
--   reply:   how many were placed in the timeline
redis.register_function{
    function_name = 'mx_room_backfill',
    callback = function(keys, a)
        local room = a[1]
        local meta, tk = rkey(room, 'meta'), rkey(room, 'timeline')
        local sp = rkey(room, 'spos')
        local low = redis.call('ZRANGE', tk, 0, 0, 'WITHSCORES')
        local top = math.min(tonumber(low[2] or '0'), 0)
        local place = {}
        for i = 2, #a - 3, 4 do
            local id = a[i]
            local old = redis.call('HGET', meta, id)
            if not old then
                put_event(keys[1], room, id, a[i + 1], tonumber(a[i + 3]),
                          '0', a[i + 2], 'oh')
                place[#place + 1] = i
            elseif redis.call('ZSCORE', tk, id) == false then
                local p, sg, d, f = string.match(old, '^(%S+) (%S+) (%S+) (%S+)$')
                if f and string.find(f, 'o', 1, true)
                   and not string.find(f, 'r', 1, true) then
                    if not string.find(f, 'h', 1, true) then
                        f = (f == '-' and '' or f) .. 'h'
                    end
                    redis.call('HSET', meta, id, p .. ' ' .. sg .. ' ' .. d .. ' ' .. f)
                    place[#place + 1] = i
                end
            end
        end
        local pos = top - #place
        for _, i in ipairs(place) do
            local id = a[i]
            redis.call('ZADD', tk, pos, id)
            redis.call('HSET', sp, id, pos)
            if string.find(a[i + 1], 'm.room.history_visibility', 1, true) then
                local ok, ev = pcall(cjson.decode, a[i + 1])
                if ok and type(ev) == 'table'
                   and ev.type == 'm.room.history_visibility'
                   and ev.state_key == '' and type(ev.content) == 'table'
                   and type(ev.content.history_visibility) == 'string' then
                    redis.call('ZADD', rkey(room, 'hvhist'), pos,
                               pos .. ' ' .. ev.content.history_visibility)
                end
            end
            pos = pos + 1
        end
        return #place
    end
}


-- mx_room_head: what the roomserver needs to take over a room
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id
--   reply:   {version|'', pos, cur_sg, depth, {extremity ids},
--            {state keys and event ids, flat}, entries down cur_sg's chain,
--            the last state group's number}
redis.register_function{
    function_name = 'mx_room_head',
    callback = function(keys, a)
        local r = redis.call('HMGET', keys[1], 'version', 'pos', 'cur_sg', 'depth', 'sg')
        local cur = tonumber(r[3] or '0')
        local n = 0
        if cur > 0 then
            n = tonumber(redis.call('HGET', rkey(a[1], 'sg:' .. cur), '\0n') or '0')
        end
        return { r[1] or '', tonumber(r[2] or '0'), cur,
                 tonumber(r[4] or '0'),
                 redis.call('SMEMBERS', rkey(a[1], 'extrem')),
                 redis.call('HGETALL', rkey(a[1], 'state')), n,
                 tonumber(r[5] or '0') }
    end,
    flags = { 'no-writes' }
}


-- mx_room_events: events by ID
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, event_id...
--   reply:   per ID {pdu or false, meta or false}
redis.register_function{
    function_name = 'mx_room_events',
    callback = function(keys, a)
        local ids = {}
        for i = 2, #a do ids[#ids + 1] = a[i] end
        if #ids == 0 then return {} end
        local pdus = redis.call('HMGET', rkey(a[1], 'pdu'), unpack(ids))
        local metas = redis.call('HMGET', rkey(a[1], 'meta'), unpack(ids))
        local out = {}
        for i = 1, #ids do out[i] = { pdus[i], metas[i] } end
        return out
    end,
    flags = { 'no-writes' }
}


-- a state group in full, following parents to the snapshot: a map from
-- "<type>\31<state_key>" to event ID (gone keys left out), or nil
local function sg_state(room, sg)
    local chain = {}
    while sg and sg ~= '' do
        local gk = rkey(room, 'sg:' .. sg)
        local all = redis.call('HGETALL', gk)
        if #all == 0 then
            if #chain == 0 then return nil end
            break
        end
        chain[#chain + 1] = all
        sg = redis.call('HGET', gk, '\0p')
    end
    local map = {}
    for i = #chain, 1, -1 do
        local all = chain[i]
        for j = 1, #all, 2 do
            if string.byte(all[j], 1) ~= 0 then map[all[j]] = all[j + 1] end
        end
    end
    for k, v in pairs(map) do
        if v == '' then map[k] = nil end
    end
    return map
end


-- mx_room_sg: a state group in full
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, group number
--   reply:   {key, event_id, ...}, or false when the group does not exist
redis.register_function{
    function_name = 'mx_room_sg',
    callback = function(keys, a)
        local map = sg_state(a[1], a[2])
        if not map then return false end
        local out = {}
        for k, v in pairs(map) do
            out[#out + 1] = k
            out[#out + 1] = v
        end
        return out
    end,
    flags = { 'no-writes' }
}


-- mx_room_prepare: what the module needs to build an event, in one call,
-- and first whether the transaction was seen before
--   KEYS[1]  mx:{<room_id>}:room
--   KEYS[2]  mx:{<user_id>}:txn:<device_id> (only with a transaction)
--   ARGV     room_id, txn_id ('' for none), then "<type>\31<state_key>"
--            keys of the state the auth rules may need
--   reply:   {'txn', record, meta or false} for a transaction seen before
--            (record "<event_id>\n<room_id>"; meta the event's, once the
--            roomserver has stored it); false for a room we do not have;
--            else {version, depth, {extremity_id, pdu, ...},
--                  {key, event_id, pdu, ...} for the keys present}
redis.register_function{
    function_name = 'mx_room_prepare',
    callback = function(keys, a)
        if a[2] ~= '' then
            local rec = redis.call('HGET', keys[2], a[2])
            if rec then
                local id, room = string.match(rec, '^([^\n]*)\n([^\n]*)')
                local meta = id and redis.call('HGET', rkey(room, 'meta'), id)
                return { 'txn', rec, meta or false }
            end
        end
        local r = redis.call('HMGET', keys[1], 'version', 'depth')
        if not r[1] then return false end
        local room = a[1]
        local pk = rkey(room, 'pdu')
        -- at most 20 extremities, the deepest: a busy room forks under
        -- concurrent sends, and each new event merges up to 20 branches
        local ids = redis.call('SMEMBERS', rkey(room, 'extrem'))
        if #ids > 20 then
            local metas = redis.call('HMGET', rkey(room, 'meta'), unpack(ids))
            local items = {}
            for i, id in ipairs(ids) do
                local d = string.match(metas[i] or '', '^%d+ %d+ (%d+)')
                items[i] = { id, tonumber(d or '0') }
            end
            table.sort(items, function(x, y) return x[2] > y[2] end)
            ids = {}
            for i = 1, 20 do ids[i] = items[i][1] end
        end
        local ex = {}
        for _, id in ipairs(ids) do
            ex[#ex + 1] = id
            ex[#ex + 1] = redis.call('HGET', pk, id) or ''
        end
        local st = {}
        if #a > 2 then
            local wanted = {}
            for i = 3, #a do wanted[#wanted + 1] = a[i] end
            local ids = redis.call('HMGET', rkey(room, 'state'), unpack(wanted))
            for i = 1, #wanted do
                if ids[i] then
                    st[#st + 1] = wanted[i]
                    st[#st + 1] = ids[i]
                    st[#st + 1] = redis.call('HGET', pk, ids[i]) or ''
                end
            end
        end
        return { r[1], tonumber(r[2] or '0'), ex, st }
    end,
    flags = { 'no-writes' }
}


-- may user read the room now?  A member who has joined may; anyone may
-- read a world_readable room.  (Members who have left read what they saw
-- until they left: that comes with the history visibility rules.)
local function room_readable(room, user)
    if redis.call('HGET', rkey(room, 'members'), user) == 'join' then
        return true
    end
    local id = redis.call('HGET', rkey(room, 'state'),
                          'm.room.history_visibility' .. SEP)
    if id then
        local ok, ev = pcall(cjson.decode,
                             redis.call('HGET', rkey(room, 'pdu'), id) or '')
        if ok and type(ev) == 'table' and type(ev.content) == 'table'
           and ev.content.history_visibility == 'world_readable' then
            return true
        end
    end
    return false
end


-- the value of a history ("<pos> <value> ..." by position) just before pos
local function hist_at(key, pos)
    local r = redis.call('ZREVRANGEBYSCORE', key, '(' .. pos, '-inf',
                         'LIMIT', 0, 1)
    if #r == 0 then return nil end
    -- (backfilled history has negative positions: mx_room_backfill)
    return string.match(r[1], '^%-?%d+ (%S+)')
end

local VIS_RANK = { world_readable = 4, shared = 3, invited = 2, joined = 1 }
local MEMBER_RANK = { join = 5, invite = 4, knock = 3, leave = 2, ban = 1 }

-- the history visibility rules: may user see the event at pos (pdu its
-- text)?  Membership and visibility are those before the event; a
-- history_visibility event counts with the more open of the old and new
-- visibility, and the user's own member event with the more open of the
-- old and new membership.  current: the user's membership now.
local function event_visible(room, user, pos, pdu, current)
    local hv = hist_at(rkey(room, 'hvhist'), pos) or 'shared'
    local ev
    if string.find(pdu, 'm.room.history_visibility', 1, true)
       or string.find(pdu, 'm.room.member', 1, true) then
        local ok, d = pcall(cjson.decode, pdu)
        if ok and type(d) == 'table' and type(d.content) == 'table' then
            ev = d
        end
    end
    if ev and ev.type == 'm.room.history_visibility' then
        local new = ev.content.history_visibility
        if VIS_RANK[new] and VIS_RANK[new] > (VIS_RANK[hv] or 0) then
            hv = new
        end
    end
    if hv == 'world_readable' then return true end
    local mk = rkey(room, 'mhist:' .. user)
    local m = hist_at(mk, pos)
    if ev and ev.type == 'm.room.member' and ev.state_key == user then
        -- one's own membership change: the more open of before and after
        -- (so a user sees their own leave)
        local new = ev.content.membership
        if (MEMBER_RANK[new] or 0) > (MEMBER_RANK[m] or 0) then m = new end
    end
    if m == 'join' then return true end
    if hv == 'shared' then
        -- shared: a user who joined at any point after the event
        if current == 'join' then return true end
        for _, e in ipairs(redis.call('ZRANGEBYSCORE', mk, '(' .. pos, '+inf')) do
            if string.match(e, '^%d+ join ') then return true end
        end
    end
    if hv == 'invited' and m == 'invite' then return true end
    return false
end

-- may user read any of the room's history?  Members past and present,
-- and anyone when the room is world_readable now.
local function history_readable(room, user)
    return room_readable(room, user)
           or redis.call('EXISTS', rkey(room, 'mhist:' .. user)) == 1
end

-- the answer to a user who may not read the room
local function not_member()
    return mx_error(403, 'M_FORBIDDEN', 'You are not a member of the room')
end

-- the gate of the history reads (messages, context, timestamp_to_event):
-- the room is known here (rk its mx:{<room_id>}:room) and user may read
-- some of its history
local function history_gate(rk, room, user)
    return redis.call('HEXISTS', rk, 'version') == 1
           and history_readable(room, user)
end


-- mx_room_read: what a user may read of a room's current state, or an event
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, user_id, what, arg:
--              'state'   all of it                        (arg unused)
--              'key'     one entry                        "<type>\31<key>"
--              'type'    the entries of one type          the type
--              'at'      member events at a position      position
--              'event'   one event, if visible and not    event_id
--                        rejected (then its redaction's ID and pdu,
--                        and the room version)
--   reply:   {event_id, pdu, ...}; MX 403 M_FORBIDDEN when the user may not
--            read the room (unknown rooms included: no leak)
redis.register_function{
    function_name = 'mx_room_read',
    callback = function(keys, a)
        local room, what, arg = a[1], a[3], a[4]
        if redis.call('HEXISTS', keys[1], 'version') == 0 then
            return not_member()
        end
        -- the state: current for members (and world_readable rooms); for
        -- those who left or were banned, as it was when they went
        local state
        if what == 'event' then
            -- an event: by the history visibility rules, below
            if not history_readable(room, a[2]) then
                return not_member()
            end
        elseif not room_readable(room, a[2]) then
            local last = redis.call('ZREVRANGE',
                                    rkey(room, 'mhist:' .. a[2]), 0, 0)
            local m, id = string.match(last[1] or '', '^%d+ (%S+) (%S+)$')
            local meta = id and redis.call('HGET', rkey(room, 'meta'), id)
            local sg = meta and string.match(meta, '^%d+ (%d+)')
            state = (m == 'leave' or m == 'ban') and sg and sg_state(room, sg)
            if not state or what == 'at' then
                return not_member()
            end
        end
        local pk = rkey(room, 'pdu')
        local out = {}
        local function add(id)
            out[#out + 1] = id
            out[#out + 1] = redis.call('HGET', pk, id) or ''
        end
        if what == 'key' then
            local id
            if state then id = state[arg]
            else id = redis.call('HGET', rkey(room, 'state'), arg) end
            if id then add(id) end
        elseif what == 'at' then
            -- each member's member event as it was at position arg
            for _, user in ipairs(redis.call('HKEYS', rkey(room, 'members'))) do
                local r = redis.call('ZREVRANGEBYSCORE',
                                     rkey(room, 'mhist:' .. user), arg, '-inf',
                                     'LIMIT', 0, 1)
                local id = r[1] and string.match(r[1], '^%d+ %S+ (%S+)$')
                if id then add(id) end
            end
        elseif what == 'event' then
            local meta = redis.call('HGET', rkey(room, 'meta'), arg)
            local pos = redis.call('ZSCORE', rkey(room, 'timeline'), arg)
            local pdu = redis.call('HGET', pk, arg)
            local current = redis.call('HGET', rkey(room, 'members'), a[2])
            if meta and pos and pdu and not string.find(meta, 'r', 1, true)
               and event_visible(room, a[2], tonumber(pos), pdu, current) then
                out[1] = arg
                out[2] = pdu
                local red = redis.call('HGET', rkey(room, 'redactions'), arg)
                if red then
                    out[3] = red
                    out[4] = redis.call('HGET', pk, red) or ''
                    out[5] = redis.call('HGET', keys[1], 'version')
                end
            end
        else
            local all
            if state then
                all = {}
                for k, v in pairs(state) do
                    all[#all + 1] = k
                    all[#all + 1] = v
                end
            else
                all = redis.call('HGETALL', rkey(room, 'state'))
            end
            local prefix = arg .. SEP
            for i = 1, #all, 2 do
                if what == 'state'
                   or string.sub(all[i], 1, #prefix) == prefix then
                    add(all[i + 1])
                end
            end
        end
        return out
    end,
    flags = { 'no-writes' }
}


-- mx_room_messages: a page of a room's timeline, by stream position
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, user_id, dir ('b' or 'f'), from, to ('' for none),
--            limit.  A position token N is the point just after the event
--            at N: backwards from N gives N, N-1, ...; forwards gives N+1,
--            N+2, ...  from '' is the end (b) or the start (f).
--            Positions may be negative (history backfilled from another
--            server, below the room's first event: mx_room_backfill).
--   reply:   {next (the token after the last event scanned, or nil when
--            the page reached the end), the first event's position (nil:
--            none), the room version, then event_id, pdu, the ID and pdu
--            of its redaction (or '', ''), ...}; MX 403 M_FORBIDDEN for users who may not read
redis.register_function{
    function_name = 'mx_room_messages',
    callback = function(keys, a)
        local room, dir, limit = a[1], a[3], tonumber(a[6])
        if not history_gate(keys[1], room, a[2]) then
            return not_member()
        end
        local current = redis.call('HGET', rkey(room, 'members'), a[2])
        local tk = rkey(room, 'timeline')
        local ids
        if dir == 'b' then
            local from = a[4] == '' and '+inf' or a[4]
            local to = a[5] == '' and '-inf' or ('(' .. a[5])
            ids = redis.call('ZREVRANGEBYSCORE', tk, from, to,
                             'WITHSCORES', 'LIMIT', 0, limit)
        else
            local from = a[4] == '' and '-inf' or ('(' .. a[4])
            local to = a[5] == '' and '+inf' or a[5]
            ids = redis.call('ZRANGEBYSCORE', tk, from, to,
                             'WITHSCORES', 'LIMIT', 0, limit)
        end
        local out = { false, #ids > 0 and tonumber(ids[2]) or false,
                      redis.call('HGET', keys[1], 'version') }
        local pk, rk = rkey(room, 'pdu'), rkey(room, 'redactions')
        local ign = ignored_of(a[2])
        for i = 1, #ids, 2 do
            local id = ids[i]
            local pdu = redis.call('HGET', pk, id) or ''
            if event_visible(room, a[2], tonumber(ids[i + 1]), pdu, current)
               and not ignored_event(ign, pdu) then
                out[#out + 1] = id
                out[#out + 1] = pdu
                local red = redis.call('HGET', rk, id)
                out[#out + 1] = red or ''
                out[#out + 1] = red and (redis.call('HGET', pk, red) or '')
                                or ''
            end
        end
        if #ids / 2 == limit then
            local last = tonumber(ids[#ids])
            out[1] = dir == 'b' and last - 1 or last
        end
        return out
    end,
    flags = { 'no-writes' }
}


-- mx_room_context: an event and what surrounds it in the timeline
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, user_id, event_id, how many before, how many after
--   reply:   {} when the event is unknown or hidden from the user, else
--            {position, start, end, event_id, pdu, n, (id, pdu) * n before
--            it (newest first), m, (id, pdu) * m after it, k, (id, pdu) * k
--            of the current state (k = 0 unless the user may read it)}
redis.register_function{
    function_name = 'mx_room_context',
    callback = function(keys, a)
        local room, user = a[1], a[2]
        if not history_gate(keys[1], room, user) then
            return not_member()
        end
        local tk, pk = rkey(room, 'timeline'), rkey(room, 'pdu')
        local current = redis.call('HGET', rkey(room, 'members'), user)
        local pos = redis.call('ZSCORE', tk, a[3])
        local pdu = redis.call('HGET', pk, a[3])
        if not pos or not pdu
           or not event_visible(room, user, tonumber(pos), pdu, current) then
            return {}
        end
        pos = tonumber(pos)
        local ign = ignored_of(user)
        local function around(ids, n, out)
            local list, last = {}, nil
            for i = 1, #ids, 2 do
                if #list / 2 >= n then break end
                local p = redis.call('HGET', pk, ids[i]) or ''
                last = tonumber(ids[i + 1])
                if event_visible(room, user, last, p, current)
                   and not ignored_event(ign, p) then
                    list[#list + 1] = ids[i]
                    list[#list + 1] = p
                end
            end
            out[#out + 1] = #list / 2
            for _, v in ipairs(list) do out[#out + 1] = v end
            return last
        end
        local nb, na = tonumber(a[4]), tonumber(a[5])
        local before = redis.call('ZREVRANGEBYSCORE', tk, '(' .. pos, '-inf',
                                  'WITHSCORES', 'LIMIT', 0, nb * 4 + 1)
        local after = redis.call('ZRANGEBYSCORE', tk, '(' .. pos, '+inf',
                                 'WITHSCORES', 'LIMIT', 0, na * 4 + 1)
        local out = { pos, 0, 0, a[3], pdu }
        local first = around(before, nb, out)
        out[2] = (first or pos) - 1
        local last = around(after, na, out)
        out[3] = last or pos
        local st = {}
        if room_readable(room, user) then
            local all = redis.call('HGETALL', rkey(room, 'state'))
            for i = 2, #all, 2 do
                st[#st + 1] = all[i]
                st[#st + 1] = redis.call('HGET', pk, all[i]) or ''
            end
        end
        out[#out + 1] = #st / 2
        for _, v in ipairs(st) do out[#out + 1] = v end
        return out
    end,
    flags = { 'no-writes' }
}


-- mx_room_ts_event: the event nearest a time, in one direction
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, user_id, ts (ms), dir ('f': at or after, 'b': at or
--            before)
--   reply:   {event_id, origin_server_ts} or {}
-- Timelines follow the order events became visible, which for a room's
-- events is near enough the order of their timestamps to search by
-- halving, then step to the nearest visible event in the direction asked.
redis.register_function{
    function_name = 'mx_room_ts_event',
    callback = function(keys, a)
        local room, user, ts, dir = a[1], a[2], tonumber(a[3]), a[4]
        if not history_gate(keys[1], room, user) then
            return not_member()
        end
        local tk, pk = rkey(room, 'timeline'), rkey(room, 'pdu')
        local current = redis.call('HGET', rkey(room, 'members'), user)
        local n = redis.call('ZCARD', tk)
        local function at(i)
            local r = redis.call('ZRANGE', tk, i, i, 'WITHSCORES')
            local pdu = redis.call('HGET', pk, r[1]) or ''
            local t = tonumber(string.match(pdu, '"origin_server_ts":(%d+)'))
            return r[1], tonumber(r[2]), pdu, t or 0
        end
        local lo, hi = 0, n - 1
        while lo < hi do
            local mid = math.floor((lo + hi) / 2)
            local _, _, _, t = at(mid)
            if t < ts then lo = mid + 1 else hi = mid end
        end
        local step = dir == 'f' and 1 or -1
        local i = lo
        if dir == 'b' then
            -- the first at or after ts, or past the end: step back to <= ts
            while i >= n do i = i - 1 end
        end
        while i >= 0 and i < n do
            local id, pos, pdu, t = at(i)
            if ((dir == 'f' and t >= ts) or (dir == 'b' and t <= ts))
               and event_visible(room, user, pos, pdu, current) then
                return { id, t }
            end
            i = i + step
        end
        return {}
    end,
    flags = { 'no-writes' }
}


-- mx_room_forget: forget a room one is no longer in
--   KEYS[1]  mx:{<user_id>}:rooms
--   ARGV     room_id, user_id
--   reply:   'OK'; MX 400 M_UNKNOWN while the user is joined
redis.register_function{
    function_name = 'mx_room_forget',
    callback = function(keys, a)
        if redis.call('HGET', rkey(a[1], 'members'), a[2]) == 'join' then
            return mx_error(400, 'M_UNKNOWN', 'You are still in the room')
        end
        redis.call('HDEL', keys[1], a[1])
        return 'OK'
    end
}


-- mx_joined_rooms: the rooms a user has joined
--   KEYS[1]  mx:{<user_id>}:rooms
--   reply:   {room_id, ...}
redis.register_function{
    function_name = 'mx_joined_rooms',
    callback = function(keys)
        local all = redis.call('HGETALL', keys[1])
        local out = {}
        for i = 1, #all, 2 do
            if string.sub(all[i + 1], 1, 5) == 'join ' then
                out[#out + 1] = all[i]
            end
        end
        return out
    end,
    flags = { 'no-writes' }
}


-- mx_room_submit: local events onto the room's input shard, in order, and
-- the transaction that asked for them remembered, in one atomic step
--   KEYS[1]  mx:input:<n>
--   KEYS[2]  mx:{<user_id>}:txn:<device_id> (only with a transaction)
--   ARGV     room_id, version, reply, req, txn_id ('' for none),
--            txn record ("<event_id>\n<room_id>"), then event_id, pdu for
--            each event
--   reply:   the number of events appended
-- reply and req go with the last event only: the request waits for the
-- verdict on it, which comes after the verdicts on those before it.
redis.register_function{
    function_name = 'mx_room_submit',
    callback = function(keys, a)
        if a[5] ~= '' then
            redis.call('HSET', keys[2], a[5], a[6])
        end
        local n = 0
        for i = 7, #a, 2 do
            local fields = { 'kind', 'event', 'room', a[1], 'event_id', a[i],
                             'event', a[i + 1], 'version', a[2],
                             'origin', 'local' }
            if i + 1 == #a and a[3] ~= '' then
                fields[#fields + 1] = 'reply'
                fields[#fields + 1] = a[3]
                fields[#fields + 1] = 'req'
                fields[#fields + 1] = a[4]
            end
            redis.call('XADD', keys[1], '*', unpack(fields))
            n = n + 1
        end
        return n
    end
}


-- the auth chain of a set of events: every event their auth_events lead
-- to, transitively, once each (ids: a list of event IDs); a table of
-- event_id -> pdu
local function auth_chain(room, ids)
    local pk = rkey(room, 'pdu')
    local seen, out = {}, {}
    local todo = {}
    for _, id in ipairs(ids) do todo[#todo + 1] = id end
    local visited = {}
    while #todo > 0 do
        local id = table.remove(todo)
        if not visited[id] then
            visited[id] = true
            local pdu = redis.call('HGET', pk, id)
            local ok, ev = false, nil
            if pdu then ok, ev = pcall(cjson.decode, pdu) end
            if ok and type(ev) == 'table' and type(ev.auth_events) == 'table' then
                for _, a in ipairs(ev.auth_events) do
                    -- v1, v2: [id, {hashes}] pairs
                    local aid = type(a) == 'table' and a[1] or a
                    if type(aid) == 'string' and not seen[aid] then
                        local apdu = redis.call('HGET', pk, aid)
                        if apdu then
                            seen[aid] = true
                            out[aid] = apdu
                            todo[#todo + 1] = aid
                        end
                    end
                end
            end
        end
    end
    return out
end


-- mx_room_fed_join_state: what a resident server answers send_join (or
-- send_leave, send_knock) with, once the event is stored: the state
-- before the event, the auth chain of that state and of the event, and
-- the servers with joined members.  (The fedserve branch serves /state
-- and /event_auth with functions of its own; these can merge.)
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, event_id
--   reply:   false when the event is not stored (or was rejected), else
--            {pdu, {state pdu...}, {auth chain pdu...}, {server...}}
redis.register_function{
    function_name = 'mx_room_fed_join_state',
    callback = function(keys, a)
        local room, id = a[1], a[2]
        local pk = rkey(room, 'pdu')
        local meta = redis.call('HGET', rkey(room, 'meta'), id)
        local pdu = redis.call('HGET', pk, id)
        if not meta or not pdu then return false end
        local sg, flags = string.match(meta, '^%d+ (%d+) %S+ (%S+)')
        if not sg or string.find(flags, 'r', 1, true) then return false end
        local ok, ev = pcall(cjson.decode, pdu)
        if not ok or type(ev) ~= 'table' then return false end

        -- the state after the event, with its own key as it was before:
        -- the member event of the same user among its auth events, or none
        local map = sg_state(room, sg) or {}
        local own = (ev.type or '') .. SEP .. (ev.state_key or '')
        map[own] = nil
        if type(ev.auth_events) == 'table' then
            for _, x in ipairs(ev.auth_events) do
                local aid = type(x) == 'table' and x[1] or x
                local apdu = type(aid) == 'string' and redis.call('HGET', pk, aid)
                if apdu then
                    local ok2, ae = pcall(cjson.decode, apdu)
                    if ok2 and type(ae) == 'table' and ae.type == ev.type
                       and ae.state_key == ev.state_key then
                        map[own] = aid
                    end
                end
            end
        end

        local state, ids = {}, { id }
        for _, sid in pairs(map) do
            local spdu = redis.call('HGET', pk, sid)
            if spdu then
                state[#state + 1] = spdu
                ids[#ids + 1] = sid
            end
        end

        local chain = {}
        for _, apdu in pairs(auth_chain(room, ids)) do
            chain[#chain + 1] = apdu
        end

        local servers, have = {}, {}
        local m = redis.call('HGETALL', rkey(room, 'members'))
        for i = 1, #m, 2 do
            if m[i + 1] == 'join' then
                local s = string.match(m[i], '^@[^:]*:(.+)$')
                if s and not have[s] then
                    have[s] = true
                    servers[#servers + 1] = s
                end
            end
        end

        return { pdu, state, chain, servers }
    end,
    flags = { 'no-writes' }
}


-- mx_room_restricted: may a user of another server join a restricted room
-- (make_join), and which local member may authorise it?  The allow rules'
-- rooms are read too (each a room of this server, or not known here).
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, user_id, n, n allowed room IDs, then the local users
--            with the power to invite, best first
--   reply:   {1 when the user is joined to an allowed room else 0, the
--            first of those users joined to the room, or '', and that
--            user's member event: its ID and PDU (for the auth rules)}
redis.register_function{
    function_name = 'mx_room_restricted',
    callback = function(keys, a)
        local user, n = a[2], tonumber(a[3])
        local allowed = 0
        for i = 4, 3 + n do
            if redis.call('HGET', rkey(a[i], 'members'), user) == 'join' then
                allowed = 1
                break
            end
        end
        local by, id, pdu = '', '', ''
        for i = 4 + n, #a do
            if redis.call('HGET', rkey(a[1], 'members'), a[i]) == 'join' then
                by = a[i]
                id = redis.call('HGET', rkey(a[1], 'state'),
                                'm.room.member' .. SEP .. by) or ''
                pdu = redis.call('HGET', rkey(a[1], 'pdu'), id) or ''
                break
            end
        end
        return { allowed, by, id, pdu }
    end,
    flags = { 'no-writes' }
}
