
-- Room aliases and the published room directory.
--
--   mx:alias:<alias>             hash: room_id, creator: a local alias
--   mx:{<room_id>}:aliases       set: the room's local aliases
--   mx:directory                 set: the room IDs published in the
--                                directory (visibility "public")
--
-- Aliases are looked up by alias, so their keys carry no room tag; the
-- functions below touch keys of several tags, which a single Redis (not a
-- cluster) allows.


local function dir_rkey(room, suffix)
    return 'mx:{' .. room .. '}:' .. suffix
end

-- the content of a room's current state event, or nil
local function dir_state(room, evtype, state_key)
    local id = redis.call('HGET', dir_rkey(room, 'state'),
                          evtype .. '\31' .. (state_key or ''))
    if not id then return nil end
    local ok, ev = pcall(cjson.decode,
                         redis.call('HGET', dir_rkey(room, 'pdu'), id) or '')
    if ok and type(ev) == 'table' and type(ev.content) == 'table' then
        return ev.content, ev
    end
    return nil
end

-- may user send a state event of this type?  (v12 creators always may)
local function dir_can_send_state(room, user, evtype)
    if redis.call('HGET', dir_rkey(room, 'members'), user) ~= 'join' then
        return false
    end
    local create, cev = dir_state(room, 'm.room.create', '')
    if not create then return false end
    if create.room_version == '12' then
        if cev.sender == user then return true end
        if type(create.additional_creators) == 'table' then
            for _, c in ipairs(create.additional_creators) do
                if c == user then return true end
            end
        end
    end
    local pl = dir_state(room, 'm.room.power_levels', '')
    if not pl then
        -- no power levels: the creator has 100, everyone else 0
        local creator = create.creator or cev.sender
        return creator == user
    end
    local level = tonumber(type(pl.users) == 'table' and pl.users[user]
                           or pl.users_default or 0) or 0
    local need = tonumber(type(pl.events) == 'table' and pl.events[evtype]
                          or pl.state_default or 50) or 50
    return level >= need
end


-- mx_alias_put: create a local alias
--   KEYS[1]  mx:alias:<alias>
--   ARGV     alias, room_id, user_id, check ('1': the user must be joined
--            to the room; '0': createRoom, the room is being made)
--   reply:   'OK'; MX 409 M_UNKNOWN when taken (createRoom: MX 400
--            M_ROOM_IN_USE), MX 404 M_NOT_FOUND for an
--            unknown room, MX 403 M_FORBIDDEN for a user not in the room
redis.register_function{
    function_name = 'mx_alias_put',
    callback = function(keys, a)
        if redis.call('EXISTS', keys[1]) == 1 then
            if a[4] == '0' then
                return mx_error(400, 'M_ROOM_IN_USE', 'Room alias ' .. a[1] ..
                                ' is already in use')
            end
            return mx_error(409, 'M_UNKNOWN', 'Room alias ' .. a[1] ..
                            ' already exists')
        end
        if a[4] == '1' then
            if redis.call('HEXISTS', dir_rkey(a[2], 'room'), 'version') == 0 then
                return mx_error(404, 'M_NOT_FOUND', 'Room not found')
            end
            if redis.call('HGET', dir_rkey(a[2], 'members'), a[3]) ~= 'join' then
                return mx_error(403, 'M_FORBIDDEN',
                                'You are not in the room')
            end
        end
        redis.call('HSET', keys[1], 'room_id', a[2], 'creator', a[3])
        redis.call('SADD', dir_rkey(a[2], 'aliases'), a[1])
        return 'OK'
    end
}


-- mx_alias_get: the room of an alias, or false
--   KEYS[1]  mx:alias:<alias>
redis.register_function{
    function_name = 'mx_alias_get',
    callback = function(keys)
        return redis.call('HGET', keys[1], 'room_id')
    end,
    flags = { 'no-writes' }
}


-- mx_alias_resolve: an alias's room and the servers likely to hold it:
-- this one first, then those of the joined members, sorted (the answer of
-- GET /directory/room/{alias} and of the federation's /query/directory)
--   KEYS[1]  mx:alias:<alias>
--   ARGV     this server's name
--   reply:   {room_id, server...}, or false for an unknown alias
redis.register_function{
    function_name = 'mx_alias_resolve',
    callback = function(keys, a)
        local room = redis.call('HGET', keys[1], 'room_id')
        if not room then return false end
        local seen, others = { [a[1]] = true }, {}
        local m = redis.call('HGETALL', dir_rkey(room, 'members'))
        for i = 1, #m, 2 do
            local server = string.match(m[i], '^@[^:]*:(.+)$')
            if m[i + 1] == 'join' and server and not seen[server] then
                seen[server] = true
                others[#others + 1] = server
            end
        end
        table.sort(others)
        local out = { room, a[1] }
        for _, s in ipairs(others) do out[#out + 1] = s end
        return out
    end,
    flags = { 'no-writes' }
}


-- mx_alias_delete: remove a local alias: its creator may, and so may
-- whoever may change the room's canonical alias
--   KEYS[1]  mx:alias:<alias>
--   ARGV     alias, user_id
--   reply:   'OK'; MX 404 M_NOT_FOUND; MX 403 M_FORBIDDEN
redis.register_function{
    function_name = 'mx_alias_delete',
    callback = function(keys, a)
        local r = redis.call('HMGET', keys[1], 'room_id', 'creator')
        if not r[1] then
            return mx_error(404, 'M_NOT_FOUND', 'Room alias not found')
        end
        if r[2] ~= a[2]
           and not dir_can_send_state(r[1], a[2], 'm.room.canonical_alias') then
            return mx_error(403, 'M_FORBIDDEN',
                            'You may not remove this alias')
        end
        redis.call('DEL', keys[1])
        redis.call('SREM', dir_rkey(r[1], 'aliases'), a[1])
        return 'OK'
    end
}


-- mx_room_aliases: a room's local aliases, for those who may read it
--   KEYS[1]  mx:{<room_id>}:aliases
--   ARGV     room_id, user_id
redis.register_function{
    function_name = 'mx_room_aliases',
    callback = function(keys, a)
        local room = a[1]
        local member = redis.call('HGET', dir_rkey(room, 'members'), a[2])
        local hv = dir_state(room, 'm.room.history_visibility', '')
        if member ~= 'join'
           and not (hv and hv.history_visibility == 'world_readable') then
            return mx_error(403, 'M_FORBIDDEN',
                            'You are not a member of the room')
        end
        return redis.call('SMEMBERS', keys[1])
    end,
    flags = { 'no-writes' }
}


-- mx_directory_visibility: get or set a room's visibility in the directory
--   KEYS[1]  mx:directory
--   ARGV     room_id, user_id, '' to get, 'public' or 'private' to set,
--            check ('1': the user must be allowed to; '0': createRoom)
--   reply:   'public' or 'private'; MX 404 M_NOT_FOUND; MX 403 M_FORBIDDEN
redis.register_function{
    function_name = 'mx_directory_visibility',
    callback = function(keys, a)
        local room = a[1]
        if a[4] == '1'
           and redis.call('HEXISTS', dir_rkey(room, 'room'), 'version') == 0 then
            return mx_error(404, 'M_NOT_FOUND', 'Room not found')
        end
        if a[3] == '' then
            return redis.call('SISMEMBER', keys[1], room) == 1
                   and 'public' or 'private'
        end
        if a[4] == '1'
           and not dir_can_send_state(room, a[2], 'm.room.canonical_alias') then
            return mx_error(403, 'M_FORBIDDEN',
                            'You may not change where the room is listed')
        end
        if a[3] == 'public' then
            redis.call('SADD', keys[1], room)
        else
            redis.call('SREM', keys[1], room)
        end
        return a[3]
    end
}


-- mx_public_rooms: a page of the published rooms, the most joined first
--   KEYS[1]  mx:directory
--   ARGV     offset, limit (0: all), search term ('' for none, matched
--            case-insensitively against name, topic and canonical alias)
--   reply:   {total, next offset or -1, room JSON, ...}
redis.register_function{
    function_name = 'mx_public_rooms',
    callback = function(keys, a)
        local offset, limit = tonumber(a[1]), tonumber(a[2])
        local term = string.lower(a[3])
        local rooms = {}
        for _, room in ipairs(redis.call('SMEMBERS', keys[1])) do
            local joined = 0
            local m = redis.call('HGETALL', dir_rkey(room, 'members'))
            for i = 2, #m, 2 do
                if m[i] == 'join' then joined = joined + 1 end
            end
            local r = { room_id = room, num_joined_members = joined }
            local c = dir_state(room, 'm.room.name', '')
            if c and type(c.name) == 'string' then r.name = c.name end
            c = dir_state(room, 'm.room.topic', '')
            if c and type(c.topic) == 'string' then r.topic = c.topic end
            c = dir_state(room, 'm.room.avatar', '')
            if c and type(c.url) == 'string' then r.avatar_url = c.url end
            c = dir_state(room, 'm.room.canonical_alias', '')
            if c and type(c.alias) == 'string' then r.canonical_alias = c.alias end
            c = dir_state(room, 'm.room.join_rules', '')
            r.join_rule = c and type(c.join_rule) == 'string' and c.join_rule
                          or 'invite'
            c = dir_state(room, 'm.room.history_visibility', '')
            r.world_readable = c ~= nil
                               and c.history_visibility == 'world_readable'
            c = dir_state(room, 'm.room.guest_access', '')
            r.guest_can_join = c ~= nil and c.guest_access == 'can_join'
            c = dir_state(room, 'm.room.create', '')
            if c and type(c.type) == 'string' then r.room_type = c.type end
            local hay = string.lower((r.name or '') .. '\0' .. (r.topic or '')
                                     .. '\0' .. (r.canonical_alias or ''))
            if term == '' or string.find(hay, term, 1, true) then
                rooms[#rooms + 1] = r
            end
        end
        table.sort(rooms, function(x, y)
            if x.num_joined_members ~= y.num_joined_members then
                return x.num_joined_members > y.num_joined_members
            end
            return x.room_id < y.room_id
        end)
        local out = { #rooms, -1 }
        local last = limit > 0 and math.min(#rooms, offset + limit) or #rooms
        for i = offset + 1, last do
            out[#out + 1] = cjson.encode(rooms[i])
        end
        if last < #rooms then out[2] = last end
        return out
    end,
    flags = { 'no-writes' }
}
