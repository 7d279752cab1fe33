
-- The syncer's views: stream positions, room timelines, users' rooms.
--
--   mx:stream                    integer: the last stream position given
--   mx:{<room_id>}:spos          hash: event_id -> stream position
--   mx:{<room_id>}:timeline      sorted set: event_id by stream position
--   mx:{<user_id>}:rooms         hash: room_id -> "<membership> <position>"
--   mx:{<room_id>}:mhist:<user>  sorted set: "<position> <membership>
--                                <event_id>" by position: the user's
--                                memberships over time
--   mx:{<room_id>}:hvhist        sorted set: "<position> <visibility>": the
--                                room's history visibility over time
--
-- Positions are given by one syncer reading mx:output in order, so they
-- follow the order in which events became visible.


-- a member event's membership ('' for none), read from the room's PDUs
local function stored_membership(room, id)
    if id == '' then return '' end
    local ok, ev = pcall(cjson.decode,
        redis.call('HGET', 'mx:{' .. room .. '}:pdu', id) or '')
    if ok and type(ev) == 'table' and type(ev.content) == 'table'
       and type(ev.content.membership) == 'string' then
        return ev.content.membership
    end
    return ''
end


-- a user's membership of the room changed at a position: the user's room
-- list, the room's history of the user (history visibility) and who moved
-- when (device list changes, lua/keys.lua)
local function set_membership(room, user, membership, pos, id)
    local key = 'mx:{' .. user .. '}:rooms'
    if membership == '' then
        redis.call('HDEL', key, room)
    else
        redis.call('HSET', key, room, membership .. ' ' .. pos)
    end
    redis.call('ZADD', 'mx:{' .. room .. '}:mhist:' .. user, pos,
               pos .. ' ' .. (membership == '' and 'leave' or membership) ..
               ' ' .. id)
    redis.call('ZADD', 'mx:{' .. room .. '}:mpos', pos, user)
end


-- the room's history visibility changed at a position (id: the
-- m.room.history_visibility event, '' when the state entry went)
local function set_visibility(room, id, pos)
    local v = 'shared'
    if id ~= '' then
        local ok, ev = pcall(cjson.decode,
            redis.call('HGET', 'mx:{' .. room .. '}:pdu', id) or '')
        if ok and type(ev) == 'table' and type(ev.content) == 'table'
           and type(ev.content.history_visibility) == 'string' then
            v = ev.content.history_visibility
        end
    end
    redis.call('ZADD', 'mx:{' .. room .. '}:hvhist', pos, pos .. ' ' .. v)
end


-- mx_sync_position: an event becomes visible to /sync.  It gets the next
-- stream position (mx:stream), once; the membership and history
-- visibility changes it brings are recorded in the same call, so no
-- /sync sees the position without what it means; the parked /sync
-- requests of the room and of the users whose membership changed wake
-- up; the sender, when a reply address is given, hears its answer.
-- Seen again (a redelivery), the event keeps its position and the rest is
-- done again, the same.  A soft-failed event (or an outlier) gets no
-- position: it is answered, and nothing else.
--   KEYS[1]  mx:{<room_id>}:spos
--   ARGV     room_id, event_id, reply channel ('' for none), request,
--            history visibility ('-': unchanged, else as set_visibility),
--            then pairs: user_id, the user's member event now ('' when
--            the state entry went)
--   reply:   {position, new (1) or seen before (0)}; {0, 0} for an
--            event soft-failed or an outlier
redis.register_function{
    function_name = 'mx_sync_position',
    callback = function(keys, a)
        local room = a[1]
        -- soft-failed (and outliers): stored, but shown to no client; the
        -- sender (federation) hears that it was taken
        local meta = redis.call('HGET', 'mx:{' .. room .. '}:meta', a[2])
        if meta and string.find(string.match(meta, '(%S+)$'), '[so]') then
            if a[3] ~= '' then
                redis.call('PUBLISH', a[3],
                           a[4] .. ' ' .. cjson.encode({ event_id = a[2] }))
            end
            return { 0, 0 }
        end
        local pos = redis.call('HGET', keys[1], a[2])
        local new = 0
        if not pos then
            pos = redis.call('INCR', 'mx:stream')
            redis.call('HSET', keys[1], a[2], pos)
            redis.call('ZADD', 'mx:{' .. room .. '}:timeline', pos, a[2])
            room_touched(room, pos)
            new = 1
        end
        pos = tonumber(pos)
        if a[5] ~= '-' then set_visibility(room, a[5], pos) end
        local wake = { room }
        for i = 6, #a - 1, 2 do
            set_membership(room, a[i], stored_membership(room, a[i + 1]),
                           pos, a[i + 1])
            wake[#wake + 1] = a[i]
        end
        if a[3] ~= '' then
            redis.call('PUBLISH', a[3],
                       a[4] .. ' ' .. cjson.encode({ event_id = a[2] }))
        end
        -- parked /sync requests of the room's users, and of the users
        -- named (an invitee is no member yet), wake up
        redis.call('PUBLISH', 'mx:wake', table.concat(wake, ' '))
        return { pos, new }
    end
}


-- a room's summary: {joined count, invited count, heroes...} where the
-- heroes are up to 5 other members (joined or invited), by user ID
local function summary_of(room, user)
    local m = redis.call('HGETALL', 'mx:{' .. room .. '}:members')
    local joined, invited, others = 0, 0, {}
    for i = 1, #m, 2 do
        if m[i + 1] == 'join' then joined = joined + 1 end
        if m[i + 1] == 'invite' then invited = invited + 1 end
        if m[i] ~= user and (m[i + 1] == 'join' or m[i + 1] == 'invite') then
            others[#others + 1] = m[i]
        end
    end
    table.sort(others)
    local out = { joined, invited }
    for i = 1, math.min(5, #others) do out[#out + 1] = others[i] end
    return out
end


-- Lazy-loaded members (the state filter's lazy_load_members): of the member
-- events, a response carries those of the timeline's senders, the heroes
-- of a summary sent (for a room without a name), and the user's own when the room is new to the client
-- or full state is asked for.  Unless include_redundant_members (or
-- full_state), one already sent to this device and unchanged since is not
-- sent again; a member event in the timeline is not repeated in the state.
-- Member events st holds already (the gap of a limited timeline) count as
-- sent.
--
--   mx:{<user_id>}:lazy:<device_id>  hash: "<room_id>\31<member>" -> the
--                                    member event last sent to the device;
--                                    emptied by an initial sync
--
-- st gets the member events, {id, pdu, ...}, appended.
local function lazy_members(room, user, device, st, tl, extra, redundant)
    local key = 'mx:{' .. user .. '}:lazy:' .. device
    local want, order, in_tl = {}, {}, {}
    local function add(u)
        if u and not want[u] then
            want[u] = true
            order[#order + 1] = u
        end
    end
    for k = 2, #tl, 2 do
        add(string.match(tl[k], '"sender":"([^"]*)"'))
        if string.find(tl[k], '"type":"m.room.member"', 1, true) then
            local sk = string.match(tl[k], '"state_key":"([^"]*)"')
            if sk then in_tl[sk] = tl[k - 1] end
        end
    end
    for _, u in ipairs(extra) do add(u) end

    local sk, pk = rkey(room, 'state'), rkey(room, 'pdu')
    for u, id in pairs(in_tl) do
        redis.call('HSET', key, room .. SEP .. u, id)
    end
    -- member events the state has already (those of a gap)
    local have = {}
    for k = 2, #st, 2 do
        if string.find(st[k], '"type":"m.room.member"', 1, true) then
            local u = string.match(st[k], '"state_key":"([^"]*)"')
            if u then
                have[u] = true
                redis.call('HSET', key, room .. SEP .. u, st[k - 1])
            end
        end
    end
    for _, u in ipairs(order) do
        local id = redis.call('HGET', sk, 'm.room.member' .. SEP .. u)
        local f = room .. SEP .. u
        if id and in_tl[u] ~= id and not have[u]
           and (redundant or redis.call('HGET', key, f) ~= id) then
            st[#st + 1] = id
            st[#st + 1] = redis.call('HGET', pk, id) or ''
            redis.call('HSET', key, f, id)
        end
    end
end


-- does the room have a name or an alias to show (heroes not needed)?
local function room_named(room)
    local sk = rkey(room, 'state')
    return redis.call('HEXISTS', sk, 'm.room.name' .. SEP) == 1
           or redis.call('HEXISTS', sk, 'm.room.canonical_alias' .. SEP) == 1
end

-- a local user's membership of a room of another server changed (a remote
-- invite, knock or leave): a new stream position, the user's room list
-- and its history, the user's parked /sync requests woken
local function remote_membership(room, user, m, id)
    local pos = redis.call('INCR', 'mx:stream')
    room_touched(room, pos)
    set_membership(room, user, m, pos, id)
    redis.call('PUBLISH', 'mx:wake', room .. ' ' .. user)
    return pos
end

-- a remote invite or knock kept in the hash key (its event_id, pos and the
-- fields given) with the membership m; the same event again keeps its
-- first position and changes nothing
local function remote_keep(key, room, user, m, id, ...)
    local old = redis.call('HMGET', key, 'event_id', 'pos')
    if old[1] == id and old[2] then return tonumber(old[2]) end
    local pos = remote_membership(room, user, m, id)
    redis.call('HSET', key, 'event_id', id, 'pos', pos, ...)
    return pos
end

-- mx_remote_invite: a local user is invited to a room of another server
-- (federation's invite, countersigned by the module): the invite and the
-- stripped state the inviting server gave are kept for /sync, and the
-- user's membership becomes 'invite' at a new stream position.  The room
-- has no other keys here until the user joins.  An invite answers the
-- user's knock, if there was one: that is forgotten.
--   KEYS[1]  mx:{<room_id>}:invited:<user_id>
--   ARGV     room_id, user_id, event_id, the invite PDU, the stripped
--            state events (canonical JSON) joined by "\30"
--   reply:   the position; the same invite again keeps its first one
redis.register_function{
    function_name = 'mx_remote_invite',
    callback = function(keys, a)
        redis.call('DEL', rkey(a[1], 'knocked:' .. a[2]))
        return remote_keep(keys[1], a[1], a[2], 'invite', a[3],
                           'event', a[4], 'state', a[5])
    end
}


-- mx_remote_knock: a local user knocked on a room of another server
-- (make_knock/send_knock through a server of the room): the knock, the
-- stripped state that server answered (knock_room_state) and the server
-- are kept for /sync and for a leave (rescinding the knock), and the
-- user's membership becomes 'knock' at a new stream position.
--   KEYS[1]  mx:{<room_id>}:knocked:<user_id>
--   ARGV     room_id, user_id, event_id, the knock PDU, the stripped
--            state events (canonical JSON) joined by "\30", the server
--   reply:   the position; the same knock again keeps its first one
redis.register_function{
    function_name = 'mx_remote_knock',
    callback = function(keys, a)
        return remote_keep(keys[1], a[1], a[2], 'knock', a[3],
                           'event', a[4], 'state', a[5], 'server', a[6])
    end
}


-- mx_remote_pending: what a local user has pending with a room of another
-- server: the invite kept by mx_remote_invite (its sender's server is in
-- the room), the server a knock went through (mx_remote_knock)
--   KEYS[1]  mx:{<room_id>}:invited:<user_id>
--   KEYS[2]  mx:{<room_id>}:knocked:<user_id>
--   reply:   {the invite PDU or '', the knock's server or ''}
redis.register_function{
    function_name = 'mx_remote_pending',
    flags = { 'no-writes' },
    callback = function(keys)
        return { redis.call('HGET', keys[1], 'event') or '',
                 redis.call('HGET', keys[2], 'server') or '' }
    end
}


-- mx_remote_invite_done: the invite to another server's room rejected,
-- or the knock on it rescinded, there (make_leave/send_leave): the user's
-- membership becomes 'leave'
--   KEYS[1]  mx:{<room_id>}:invited:<user_id>
--   KEYS[2]  mx:{<room_id>}:knocked:<user_id>
--   ARGV     room_id, user_id, the leave's event_id
--   reply:   the position
redis.register_function{
    function_name = 'mx_remote_invite_done',
    callback = function(keys, a)
        redis.call('DEL', keys[1], keys[2])
        return remote_membership(a[1], a[2], 'leave', a[3])
    end
}


-- the stripped state an invitee sees of a room
local STRIPPED = { 'm.room.create', 'm.room.join_rules', 'm.room.name',
                   'm.room.avatar', 'm.room.canonical_alias',
                   'm.room.encryption', 'm.room.topic' }

-- that state and a member's event, {id, pdu, ...}, and the member's PDU
-- ('' for none)
local function stripped_state(room, user)
    local st = {}
    local pk, sk = rkey(room, 'pdu'), rkey(room, 'state')
    for _, t in ipairs(STRIPPED) do
        local id = redis.call('HGET', sk, t .. SEP)
        if id then
            st[#st + 1] = id
            st[#st + 1] = redis.call('HGET', pk, id) or ''
        end
    end
    local id = redis.call('HGET', sk, 'm.room.member' .. SEP .. user)
    local mine = id and redis.call('HGET', pk, id) or ''
    if id then
        st[#st + 1] = id
        st[#st + 1] = mine
    end
    return st, mine
end

-- mx_room_invite_state: what an invite of another server's user carries
-- of the room (invite_room_state of federation's /v2/invite): the
-- stripped state and the inviter's member event, as full PDUs (v1.16)
--   KEYS[1]  mx:{<room_id>}:state
--   ARGV     room_id, the inviter's user ID
--   reply:   {pdu, ...}
redis.register_function{
    function_name = 'mx_room_invite_state',
    flags = { 'no-writes' },
    callback = function(keys, a)
        local st = stripped_state(a[1], a[2])
        local out = {}
        for i = 2, #st, 2 do
            if st[i] ~= '' then out[#out + 1] = st[i] end
        end
        return out
    end
}

-- mx_sync: what /sync gives a user since a position
--   KEYS[1]  mx:{<user_id>}:rooms
--   ARGV     user_id, since ('' for an initial sync), timeline limit,
--            full_state ('1' or '0'), now (ms), device_id, filter
--            options: a string of letters, l lazy_load_members, r
--            include_redundant_members, L include_leave, t
--            unread_thread_notifications
-- It writes: the device's to-device messages up to since are delivered
-- and deleted; with l, the device's record of the members sent.
--   reply:   {next position, {room_id, ...} (every room the user has a
--            membership in: for wakeups), {type, content, ...} (global
--            account data), {to-device event JSON, ...}, {presence:
--            user_id, presence, status_msg, active_ts, ...}, {e2ee: see
--            keys_sync in lua/keys.lua}, room, ...} where a room is {room_id,
--            section (join, invite, leave), limited (0/1), the position
--            before the timeline's first event, {state id, pdu, ...},
--            {timeline id, pdu, ...}, {account data type, content, ...},
--            and for joined rooms {typing changed (0/1), {user_id, ...},
--            {receipt type, user_id, thread, receipt JSON, ...}},
--            {joined count, invited count, heroes...}, {unread
--            notification count, highlight count, {thread root, count,
--            highlight count, ...}}}; for invites (and knocks) the state
--            is the stripped state
local function sync_one(key, a)
    local user, limit = a[1], tonumber(a[3])
    local since = a[2] ~= '' and tonumber(a[2]) or nil
    local full = a[4] == '1'
    local now = tonumber(a[5])
    local opts = a[7] or ''
    local lazy = string.find(opts, 'l', 1, true) ~= nil
    local redundant = full or string.find(opts, 'r', 1, true) ~= nil
    local include_leave = string.find(opts, 'L', 1, true) ~= nil
    local threads = string.find(opts, 't', 1, true) ~= nil
    if lazy and not since then
        redis.call('DEL', 'mx:{' .. user .. '}:lazy:' .. a[6])
    end
    local next_pos = tonumber(rread('GET', 'mx:stream') or '0')
    local all = redis.call('HGETALL', key)
    local ign = ignored_of(user)

    -- the joined rooms quiet since the token: one read for all of them
    -- (a room without the record is never taken for quiet)
    local quiet = {}
    if since and not full then
        local lk = {}
        for i = 1, #all, 2 do
            lk[#lk + 1] = 'mx:{' .. all[i] .. '}:last'
        end
        if #lk > 0 then
            local last = redis.call('MGET', unpack(lk))
            for i = 1, #lk do
                local l = tonumber(last[i])
                if l and l <= since then quiet[all[2 * i - 1]] = true end
            end
        end
    end

    local out = { next_pos, {}, {}, todevice(user, a[6], since, ign),
                  presence_of(user, since),
                  keys_sync(user, a[6], since, all, quiet) }

    -- account data changed since (all of it on an initial sync):
    -- global into out[3], a room's into ad[room]
    local ad = {}
    local function ad_add(room, t)
        local hk = room == '' and ('mx:{' .. user .. '}:account_data')
                   or ('mx:{' .. user .. '}:room_account_data:' .. room)
        local c = redis.call('HGET', hk, t)
        if not c then return end
        local list = room == '' and out[3] or ad[room]
        if not list then list = {}; ad[room] = list end
        list[#list + 1] = t
        list[#list + 1] = c
    end
    for _, e in ipairs(redis.call('ZRANGEBYSCORE',
                                  'mx:{' .. user .. '}:adpos',
                                  since and ('(' .. since) or '-inf',
                                  '+inf')) do
        local room, t = string.match(e, '^(.-)\31(.*)$')
        if room then ad_add(room, t) end
    end

    -- the current state; lazily, the member events are left to
    -- lazy_members, but for those placed in the gap of a limited
    -- timeline, (gap_from, gap_to]: the spec wants them, redundant
    -- or not
    -- the room's state, but for the entries the timeline tl ({id, pdu,
    -- ...}) carries: the state is what comes before the timeline, and a
    -- client applies the timeline's state events after it
    local function state_of(room, list, gap_from, gap_to, tl)
        local st = redis.call('HGETALL', rkey(room, 'state'))
        local pk = rkey(room, 'pdu')
        local shown = {}
        for i = 1, #tl, 2 do shown[tl[i]] = true end
        for i = 2, #st, 2 do
            local keep = not shown[st[i]]
                         and not (lazy and string.sub(st[i - 1], 1, 14)
                                       == 'm.room.member' .. SEP)
            if not keep and gap_from and not shown[st[i]] then
                local p = tonumber(redis.call('HGET', rkey(room, 'spos'),
                                              st[i]) or '0')
                keep = p > gap_from and p <= gap_to
            end
            if keep then
                list[#list + 1] = st[i]
                list[#list + 1] = redis.call('HGET', pk, st[i]) or ''
            end
        end
    end

    -- the last `limit` events after `from` (exclusive) up to `to`
    -- (joined_at: the position of the user's join, for a joined room;
    -- the room list records it with the membership)
    local function timeline_of(room, from, to, current, joined_at)
        local tk, pk = rkey(room, 'timeline'), rkey(room, 'pdu')
        local ids = rread('ZREVRANGEBYSCORE', tk, to,
                          from and ('(' .. from) or '-inf',
                          'WITHSCORES', 'LIMIT', 0, limit + 1)
        local limited = #ids / 2 > limit and 1 or 0
        local list, first = {}, nil
        local n = math.min(#ids / 2, limit)
        -- a member since before an event sees it: the history rules
        -- only need asking about events older than the user's join
        for i = n, 1, -1 do
            local id, pos = ids[2 * i - 1], tonumber(ids[2 * i])
            local pdu = rread('HGET', pk, id) or ''
            if ((joined_at and pos > joined_at)
                or event_visible(room, user, pos, pdu, current))
               and not ignored_event(ign, pdu) then
                list[#list + 1] = id
                list[#list + 1] = pdu
            end
            first = first or pos
        end
        local before
        if first then
            before = first - 1
        else
            before = to == '+inf' and next_pos or tonumber(to)
        end
        return list, limited, before
    end

    for i = 1, #all, 2 do
        local room = all[i]
        local m, mpos = string.match(all[i + 1], '^(%S+) (%d+)$')
        mpos = tonumber(mpos)
        local rooms = out[2]
        rooms[#rooms + 1] = room

        if m == 'join' and quiet[room] and not ad[room]
           and mpos <= since then
            -- nothing since the token: nothing to send
        elseif m == 'join' then
            local fresh = not since or mpos > since
            local tl, limited, before = timeline_of(room,
                (not fresh) and since or nil, '+inf', 'join', mpos)
            local typing, receipts = ephemeral(room, user,
                (not fresh) and since or nil, now)
            if fresh or full or #tl > 0 or ad[room] or typing
               or #receipts > 0 then
                local st = {}
                if fresh or full or limited == 1 then
                    state_of(room, st, not (fresh or full) and since,
                             before, tl)
                end
                -- the summary when it may have changed: a new room,
                -- or member events in the timeline (it costs a read
                -- of every member, which a busy room's syncs skip)
                local summary = {}
                local members = fresh or full
                for k = 2, #tl, 2 do
                    if members then break end
                    members = string.find(tl[k], '"m.room.member"', 1,
                                          true) ~= nil
                end
                if members then summary = summary_of(room, user) end
                if lazy then
                    -- heroes name a room that has no name of its own
                    local extra = {}
                    if #summary > 2 and not room_named(room) then
                        extra = { unpack(summary, 3) }
                    end
                    if fresh or full then extra[#extra + 1] = user end
                    lazy_members(room, user, a[6], st, tl, extra,
                                 redundant)
                end
                out[#out + 1] = { room, 'join', limited, before, st, tl,
                                  ad[room] or {},
                                  { typing and 1 or 0, typing or {},
                                    receipts },
                                  summary,
                                  unread_counts(room, user, threads) }
            end

        elseif (m == 'invite' or m == 'knock')
               and (not since or mpos > since) then
            local st, mine = stripped_state(room, user)
            if #st == 0 then
                -- a room of another server: what its invite brought, or
                -- what the knock's answer did
                local inv = redis.call('HMGET',
                    rkey(room, (m == 'knock' and 'knocked:' or 'invited:')
                               .. user), 'event_id', 'event', 'state')
                if inv[2] then
                    for e in string.gmatch(inv[3] or '', '[^\30]+') do
                        st[#st + 1] = ''
                        st[#st + 1] = e
                    end
                    st[#st + 1] = inv[1]
                    st[#st + 1] = inv[2]
                    mine = inv[2]
                end
            end
            -- an invite by a user the invitee ignores is not shown
            if not (m == 'invite' and ignored_event(ign, mine, true)) then
                out[#out + 1] = { room, m, 0, 0, st, {}, {} }
            end

        elseif (m == 'leave' or m == 'ban')
               and ((since and mpos > since)
                    or (include_leave and (full or not since))) then
            -- what happened since, up to and including the leave (all
            -- of it, to the timeline's limit, for include_leave)
            local from = since and mpos > since and since or nil
            local tl, limited, before = timeline_of(room, from, mpos, m)
            local st = {}
            if limited == 1 or not from then
                state_of(room, st, from, before, tl)
            end
            if lazy then
                lazy_members(room, user, a[6], st, tl, {}, redundant)
            end
            out[#out + 1] = { room, 'leave', limited, before, st, tl,
                              ad[room] or {} }
        end
    end

    return out
end

redis.register_function{
    function_name = 'mx_sync',
    callback = function(keys, a) return sync_one(keys[1], a) end
}


-- mx_sync_many: the syncs of many woken /sync requests in one call, whose
-- shared reads (the room's new events, its receipts and typing, who
-- changed presence or devices since) are made once
--   KEYS     mx:{<user_id>}:rooms of each request
--   ARGV     now (ms), then for each request: user_id, since, limit,
--            full_state, device_id, filter options (as mx_sync's)
--   reply:   {mx_sync's reply, ...} in the order of the requests
redis.register_function{
    function_name = 'mx_sync_many',
    callback = function(keys, a)
        return with_read_memo(function()
            local out = {}
            for i = 1, #keys do
                local b = 1 + (i - 1) * 6
                out[i] = sync_one(keys[i], { a[b + 1], a[b + 2], a[b + 3],
                                             a[b + 4], a[1], a[b + 5],
                                             a[b + 6] })
            end
            return out
        end)
    end
}
