
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
local function account_data_put(key, evtype, content)
    redis.call('HSET', key, evtype, content)
    local user, room = string.match(key, '^mx:{(.-)}:room_account_data:(.*)$')
    if not user then
        user = string.match(key, '^mx:{(.-)}:account_data$')
        room = ''
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
