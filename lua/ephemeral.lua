
-- Typing and receipts: a room's ephemeral events.
--
--   mx:{<room_id>}:typing        sorted set: user_id by the ms its typing
--                                ends
--   mx:{<room_id>}:typing_pos    string: the stream position of the last
--                                change of who types
--   mx:{<room_id>}:receipts      hash: "<type>\31<user_id>\31<thread>" ->
--                                {"event_id", "ts"} (JSON); thread '' for
--                                unthreaded receipts
--   mx:{<room_id>}:rpos          sorted set: those fields by the stream
--                                position of their last change
--   mx:{<room_id>}:last          string: the stream position of the last
--                                change /sync shows of the room (event,
--                                typing, receipt); a room quiet since a
--                                token costs an incremental sync one read
--
-- Every change takes the next position of mx:stream, the stream room
-- events and account data share, so /sync's one token covers all of it;
-- and wakes the room's parked /sync requests (mx:wake).


local function eph_key(room, suffix)
    return 'mx:{' .. room .. '}:' .. suffix
end


-- the room changed at a position (positions only grow)
local function room_touched(room, pos)
    redis.call('SET', eph_key(room, 'last'), pos)
end


-- mx_typing_set: a user starts or stops typing
--   KEYS[1]  mx:{<room_id>}:typing
--   ARGV     room_id, user_id, now (ms), timeout (ms; 0 to stop), this
--            server's name
--   reply:   'OK'; MX 403 M_FORBIDDEN for a user not joined to the room
-- Other servers of the room get an m.typing EDU for every call (a renewal
-- too: they time typing out themselves); shared with federation's
-- m.typing (lua/txn.lua), which sends nothing back: nil, or the refusal
local function typing_set(room, user, now, timeout)
    if redis.call('HGET', eph_key(room, 'members'), user) ~= 'join' then
        return mx_error(403, 'M_FORBIDDEN', 'You are not in the room')
    end
    local tk = eph_key(room, 'typing')
    local was = redis.call('ZSCORE', tk, user)
    if timeout > 0 then
        redis.call('ZADD', tk, now + timeout, user)
    else
        redis.call('ZREM', tk, user)
    end
    -- a change of who types (not a renewal) is news
    local typing = timeout > 0
    local before = was ~= false and tonumber(was) > now
    if typing ~= before then
        local pos = redis.call('INCR', 'mx:stream')
        redis.call('SET', eph_key(room, 'typing_pos'), pos)
        room_touched(room, pos)
        redis.call('PUBLISH', 'mx:wake', room)
    end
    return nil
end

redis.register_function{
    function_name = 'mx_typing_set',
    callback = function(keys, a)
        local room, user = a[1], a[2]
        local err = typing_set(room, user, tonumber(a[3]), tonumber(a[4]))
        if err then return err end
        if a[5] and edu_room_remote(room, a[5]) then
            edu_out('room', room, cjson.encode({
                edu_type = 'm.typing',
                content = { room_id = room, user_id = user,
                            typing = tonumber(a[4]) > 0 }
            }), false)
        end
        return 'OK'
    end
}


-- mx_typing_expire: those whose typing has run out stop
--   KEYS[1]  mx:{<room_id>}:typing
--   ARGV     room_id, now (ms)
--   reply:   how many stopped
redis.register_function{
    function_name = 'mx_typing_expire',
    callback = function(keys, a)
        local n = redis.call('ZREMRANGEBYSCORE', keys[1], '-inf', a[2])
        if n > 0 then
            local pos = redis.call('INCR', 'mx:stream')
            redis.call('SET', eph_key(a[1], 'typing_pos'), pos)
            room_touched(a[1], pos)
            redis.call('PUBLISH', 'mx:wake', a[1])
        end
        return n
    end
}


-- mx_receipt_put: a user's receipt
--   KEYS[1]  mx:{<room_id>}:receipts
--   ARGV     room_id, user_id, type (m.read or m.read.private),
--            event_id, thread ('' for none), now (ms)
--   reply:   'OK'; MX 403 M_FORBIDDEN for a user not joined; MX 404
--            M_NOT_FOUND for an event the room does not have
local function receipt_check(room, user, event_id)
    if redis.call('HGET', eph_key(room, 'members'), user) ~= 'join' then
        return mx_error(403, 'M_FORBIDDEN', 'You are not in the room')
    end
    if not redis.call('ZSCORE', eph_key(room, 'timeline'), event_id) then
        return mx_error(404, 'M_NOT_FOUND', 'Unknown event ' .. event_id)
    end
    return nil
end

-- (from_afar: another server's receipt, which goes to no other server)
local function receipt_put(room, user, type, event_id, thread, now, from_afar)
    local field = type .. '\31' .. user .. '\31' .. thread
    redis.call('HSET', eph_key(room, 'receipts'), field,
               cjson.encode({ event_id = event_id, ts = tonumber(now) }))
    -- public receipts of local users go to the room's other servers: an
    -- m.receipt
    if type == 'm.read' and not from_afar
       and edu_room_remote(room, string.match(user, '^@[^:]*:(.+)$') or '') then
        local data = { ts = tonumber(now) }
        if thread ~= '' then data.thread_id = thread end
        edu_out('room', room, cjson.encode({ edu_type = 'm.receipt', content = {
            [room] = { ['m.read'] = { [user] = {
                event_ids = { event_id }, data = data } } } } }), false)
    end
    local pos = redis.call('INCR', 'mx:stream')
    redis.call('ZADD', eph_key(room, 'rpos'), pos, field)
    room_touched(room, pos)
    redis.call('PUBLISH', 'mx:wake', room)
end

redis.register_function{
    function_name = 'mx_receipt_put',
    callback = function(keys, a)
        local err = receipt_check(a[1], a[2], a[4])
        if err then return err end
        receipt_put(a[1], a[2], a[3], a[4], a[5], a[6])
        return 'OK'
    end
}


-- mx_read_markers: the fully read marker and the receipts, at once
--   KEYS[1]  mx:{<room_id>}:receipts
--   ARGV     room_id, user_id, m.fully_read, m.read, m.read.private
--            (event IDs, '' for those not given), now (ms)
--   reply:   'OK', or the refusal of mx_receipt_put for any of them
redis.register_function{
    function_name = 'mx_read_markers',
    callback = function(keys, a)
        local room, user = a[1], a[2]
        for i = 3, 5 do
            if a[i] ~= '' then
                local err = receipt_check(room, user, a[i])
                if err then return err end
            end
        end
        if a[3] ~= '' then
            account_data_put('mx:{' .. user .. '}:room_account_data:' .. room,
                             'm.fully_read',
                             cjson.encode({ event_id = a[3] }))
        end
        if a[4] ~= '' then receipt_put(room, user, 'm.read', a[4], '', a[6]) end
        if a[5] ~= '' then
            receipt_put(room, user, 'm.read.private', a[5], '', a[6])
        end
        return 'OK'
    end
}


-- the ephemeral events of a room for user since a position (nil: all):
-- {typing user IDs or false when unchanged, {type, user, thread, receipt
-- JSON, ...}}
local function ephemeral(room, user, since, now)
    local typing = false
    local tpos = tonumber(rread('GET', eph_key(room, 'typing_pos')) or '0')
    if not since or tpos > since then
        typing = rread('ZRANGEBYSCORE', eph_key(room, 'typing'),
                            '(' .. now, '+inf')
    end
    local receipts = {}
    local fields = rread('ZRANGEBYSCORE', eph_key(room, 'rpos'),
                              since and ('(' .. since) or '-inf', '+inf')
    for _, f in ipairs(fields) do
        local t, u, th = string.match(f, '^(.-)\31(.-)\31(.*)$')
        -- private receipts go to their owner only
        if t and (t ~= 'm.read.private' or u == user) then
            receipts[#receipts + 1] = t
            receipts[#receipts + 1] = u
            receipts[#receipts + 1] = th
            receipts[#receipts + 1] =
                rread('HGET', eph_key(room, 'receipts'), f) or '{}'
        end
    end
    return typing, receipts
end


-- mx_todevice_send: messages to devices of local users, and to those of
-- other servers' users
--   KEYS[1]  mx:{<sender>}:todevice_txn:<sender's device>
--   ARGV     sender, event type, txn_id, this server's name, then (user_id,
--            device_id or '*', content JSON) for each message
--   reply:   the number of devices reached; 0 for a transaction seen
--            before (nothing sent again)
-- Each message takes a stream position and waits in
-- mx:{<user_id>}:todevice:<device_id> ("<position> <event JSON>") until
-- the device syncs past it; the recipient's parked syncs wake.
-- one message to a local user's device (or '*': every device); shared
-- with federation's m.direct_to_device (lua/txn.lua); the devices reached
local function todevice_deliver(sender, type, user, device, content)
    local devices = { device }
    if device == '*' then
        devices = redis.call('SMEMBERS', 'mx:{' .. user .. '}:devices')
    end
    local ev = cjson.encode({ sender = sender, type = type,
                              content = content })
    for _, d in ipairs(devices) do
        local pos = redis.call('INCR', 'mx:stream')
        redis.call('ZADD', 'mx:{' .. user .. '}:todevice:' .. d,
                   pos, pos .. ' ' .. ev)
    end
    if #devices > 0 then
        redis.call('PUBLISH', 'mx:wake', '- ' .. user)
    end
    return #devices
end

redis.register_function{
    function_name = 'mx_todevice_send',
    callback = function(keys, a)
        if redis.call('HSETNX', keys[1], a[3], '1') == 0 then
            return 0
        end
        local n = 0
        local remote, order = {}, {}
        for i = 5, #a - 2, 3 do
            local user, device = a[i], a[i + 1]
            local server = string.match(user, '^@[^:]*:(.+)$')
            local ok, content = pcall(cjson.decode, a[i + 2])
            if server and server ~= a[4] then
                -- one m.direct_to_device per server, the content as sent
                local r = remote[server]
                if not r then
                    r = { users = {}, devices = {} }
                    remote[server] = r
                    order[#order + 1] = server
                end
                local d = r.devices[user]
                if not d then
                    d = {}
                    r.devices[user] = d
                    r.users[#r.users + 1] = user
                end
                d[#d + 1] = cjson.encode(device) .. ':' .. a[i + 2]
                n = n + 1
            elseif ok then
                n = n + todevice_deliver(a[1], a[2], user, device, content)
            end
        end
        -- the receiver drops a message_id it has seen: the sender's
        -- device and transaction make it
        local mid = redis.sha1hex(keys[1] .. '\0' .. a[3])
        for _, server in ipairs(order) do
            local r, msgs = remote[server], {}
            for _, u in ipairs(r.users) do
                msgs[#msgs + 1] = cjson.encode(u) .. ':{'
                                  .. table.concat(r.devices[u], ',') .. '}'
            end
            edu_out('dest', server, '{"content":{"message_id":'
                    .. cjson.encode(mid) .. ',"messages":{'
                    .. table.concat(msgs, ',') .. '},"sender":'
                    .. cjson.encode(a[1]) .. ',"type":' .. cjson.encode(a[2])
                    .. '},"edu_type":"m.direct_to_device"}', true)
        end
        return n
    end
}


-- the to-device messages of a device after since (none from the users in
-- ign, the ignored), those up to since delivered and gone: {event JSON, ...}
local function todevice(user, device, since, ign)
    local key = 'mx:{' .. user .. '}:todevice:' .. device
    local out, acked = {}, false
    -- usually nothing waits: one read, and a delete only when the device
    -- has synced past some (it acknowledges them so)
    local all = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    for i = 1, #all, 2 do
        if since and tonumber(all[i + 1]) <= since then
            acked = true
        else
            local m = string.match(all[i], '^%d+ (.*)$')
            if not ignored_event(ign, m) then out[#out + 1] = m end
        end
    end
    if acked then
        redis.call('ZREMRANGEBYSCORE', key, '-inf', since)
    end
    return out
end


-- Presence of local users.
--
--   mx:{<user_id>}:presence      hash: presence (online, unavailable,
--                                offline), status_msg, active_ts (ms of
--                                the last activity), pos (the stream
--                                position of the last change)

local PRESENCE = { online = true, unavailable = true, offline = true }

-- mx_presence_set: a user's presence (and, optionally, status message)
--   KEYS[1]  mx:{<user_id>}:presence
--   ARGV     user_id, presence, status_msg ('\0' to leave it), now (ms),
--            active ('1': the user is active now)
--   reply:   'OK'; MX 400 M_INVALID_PARAM for an unknown presence
-- Only a change of presence or message is news (a new position, and the
-- user's rooms wake); activity alone moves active_ts.
-- shared with federation's m.presence (lua/txn.lua): a = {user_id,
-- presence, status_msg, now, active}; nil, or the refusal
local function presence_set(a)
    local pkey = 'mx:{' .. a[1] .. '}:presence'
    local rooms
    if not PRESENCE[a[2]] then
        return mx_error(400, 'M_INVALID_PARAM', 'Unknown presence ' .. a[2])
    end
    local old = redis.call('HMGET', pkey, 'presence', 'status_msg')
    local changed = old[1] ~= a[2]
    if a[3] ~= '\0' and old[2] ~= a[3] then
        changed = true
        redis.call('HSET', pkey, 'status_msg', a[3])
    end
    redis.call('HSET', pkey, 'presence', a[2])
    if a[5] == '1' then
        redis.call('HSET', pkey, 'active_ts', a[4])
    end
    if changed then
        local pos = redis.call('INCR', 'mx:stream')
        redis.call('HSET', pkey, 'pos', pos)
        -- who changed when, for incremental syncs to look up cheaply
        redis.call('ZADD', 'mx:presence', pos, a[1])
        rooms = redis.call('HGETALL', 'mx:{' .. a[1] .. '}:rooms')
        for i = 1, #rooms, 2 do
            if string.sub(rooms[i + 1], 1, 5) == 'join ' then
                redis.call('PUBLISH', 'mx:wake', rooms[i])
            end
        end
        redis.call('PUBLISH', 'mx:wake', '- ' .. a[1])
    end
    return nil, changed, rooms
end

redis.register_function{
    function_name = 'mx_presence_set',
    callback = function(keys, a)
        local err, changed, rooms = presence_set(a)
        if err then return err end
        if changed then
            -- the servers sharing a room with the user: an m.presence
            local servers = edu_user_servers(a[1], rooms)
            if #servers > 0 then
                local p = redis.call('HMGET', keys[1], 'presence',
                                     'status_msg', 'active_ts')
                local active = tonumber(p[3] or a[4])
                local edu = cjson.encode({ edu_type = 'm.presence', content = {
                    push = { {
                        user_id = a[1], presence = p[1],
                        status_msg = p[2] or nil,
                        last_active_ago = math.max(0, tonumber(a[4]) - active),
                        currently_active = a[5] == '1'
                    } } } })
                for _, s in ipairs(servers) do
                    edu_out('dest', s, edu, false)
                end
            end
        end
        return 'OK'
    end
}


-- do two users share a joined room?
local function share_room(a, b)
    if a == b then return true end
    local rooms = redis.call('HGETALL', 'mx:{' .. a .. '}:rooms')
    for i = 1, #rooms, 2 do
        if string.sub(rooms[i + 1], 1, 5) == 'join '
           and rread('HGET', 'mx:{' .. rooms[i] .. '}:members', b)
               == 'join' then
            return true
        end
    end
    return false
end


-- mx_presence_get: a user's presence, for those who share a room with them
--   KEYS[1]  mx:{<user_id>}:presence
--   ARGV     user_id, asker
--   reply:   {presence, status_msg or false, active_ts or false};
--            MX 403 M_FORBIDDEN for an asker who shares no room
redis.register_function{
    function_name = 'mx_presence_get',
    callback = function(keys, a)
        if not share_room(a[2], a[1]) then
            return mx_error(403, 'M_FORBIDDEN',
                            'You do not share a room with this user')
        end
        local p = redis.call('HMGET', keys[1], 'presence', 'status_msg',
                             'active_ts')
        return { p[1] or 'offline', p[2] or false, p[3] or false }
    end,
    flags = { 'no-writes' }
}


-- the presence of the users sharing a room with user, changed after since
-- (all of them when since is nil): {user_id, presence, status_msg or '',
-- active_ts or '', ...}
local function presence_of(user, since)
    local seen, out = {}, {}
    if since then
        -- only those who changed since: few, whatever the rooms' size
        for _, u in ipairs(rread('ZRANGEBYSCORE', 'mx:presence',
                                      '(' .. since, '+inf')) do
            if share_room(user, u) then
                local p = rread('HMGET', 'mx:{' .. u .. '}:presence',
                                     'presence', 'status_msg', 'active_ts')
                out[#out + 1] = u
                out[#out + 1] = p[1] or 'offline'
                out[#out + 1] = p[2] or ''
                out[#out + 1] = p[3] or ''
            end
        end
        return out
    end
    local rooms = redis.call('HGETALL', 'mx:{' .. user .. '}:rooms')
    for i = 1, #rooms, 2 do
        if string.sub(rooms[i + 1], 1, 5) == 'join ' then
            local m = redis.call('HGETALL', 'mx:{' .. rooms[i] .. '}:members')
            for j = 1, #m, 2 do
                local u = m[j]
                if m[j + 1] == 'join' and not seen[u] then
                    seen[u] = true
                    local p = redis.call('HMGET', 'mx:{' .. u .. '}:presence',
                                         'presence', 'status_msg', 'active_ts',
                                         'pos')
                    if p[1] and (not since or tonumber(p[4] or '0') > since)
                    then
                        out[#out + 1] = u
                        out[#out + 1] = p[1]
                        out[#out + 1] = p[2] or ''
                        out[#out + 1] = p[3] or ''
                    end
                end
            end
        end
    end
    return out
end
