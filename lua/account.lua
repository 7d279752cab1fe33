
-- mx_account_data_put: store one account data event of a user
--   KEYS[1]  mx:{<user_id>}:account_data, or
--            mx:{<user_id>}:room_account_data:<room_id>
--   ARGV[1]  the event type
--   ARGV[2]  its content, canonical JSON
--   reply:   'OK'
-- The change takes the next stream position (mx:stream, shared with room
-- events), recorded in mx:{<user_id>}:adpos ("<room_id>\31<type>" by
-- position, room_id '' for global data), so /sync gives it once; the
-- user's parked /sync requests wake ("- <user_id>" on mx:wake).
-- Ignored users (m.ignored_user_list, global account data): their
-- events (state events excepted), invites and to-device messages are not
-- shown to the user, and they notify the user of nothing.
--
--   mx:{<user_id>}:ignored   set: the users the user ignores
--   mx:ignorers              set: the users whose set is not empty, so
--                            that the notification path pays one SCARD
--                            while nobody ignores anybody
local function ignored_set(user, content)
    local key = 'mx:{' .. user .. '}:ignored'
    redis.call('DEL', key)
    local ok, c = pcall(cjson.decode, content)
    if ok and type(c) == 'table' and type(c.ignored_users) == 'table' then
        for u, _ in pairs(c.ignored_users) do
            if type(u) == 'string' then redis.call('SADD', key, u) end
        end
    end
    if redis.call('EXISTS', key) == 1 then
        redis.call('SADD', 'mx:ignorers', user)
    else
        redis.call('SREM', 'mx:ignorers', user)
    end
end

-- the users a user ignores, as a set table; nil when none
local function ignored_of(user)
    local list = redis.call('SMEMBERS', 'mx:{' .. user .. '}:ignored')
    if #list == 0 then return nil end
    local set = {}
    for _, u in ipairs(list) do set[u] = true end
    return set
end

-- is a PDU an event by one of the ignored users, and not a state event
-- (or any event, with state_too)?
local function ignored_event(ign, pdu, state_too)
    if not ign then return false end
    local ok, ev = pcall(cjson.decode, pdu)
    return ok and type(ev) == 'table' and (state_too or ev.state_key == nil)
           and ign[ev.sender] == true
end

local function account_data_put(key, evtype, content)
    redis.call('HSET', key, evtype, content)
    local user, room = string.match(key, '^mx:{(.-)}:room_account_data:(.*)$')
    if not user then
        user = string.match(key, '^mx:{(.-)}:account_data$')
        room = ''
        if user and evtype == 'm.ignored_user_list' then
            ignored_set(user, content)
        end
    end
    if user then
        local pos = redis.call('INCR', 'mx:stream')
        redis.call('ZADD', 'mx:{' .. user .. '}:adpos', pos,
                   room .. '\31' .. evtype)
        redis.call('PUBLISH', 'mx:wake', '- ' .. user)
    end
end

redis.register_function{
    function_name = 'mx_account_data_put',
    callback = function(keys, args)
        account_data_put(keys[1], args[1], args[2])
        return 'OK'
    end
}
