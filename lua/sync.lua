
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


-- mx_sync_position: the stream position of an event, given once (the next
-- of mx:stream), and, when a reply address is given, the sender's answer
--   KEYS[1]  mx:{<room_id>}:spos
--   ARGV     room_id, event_id, reply channel ('' for none), request
--   reply:   {position, new (1) or seen before (0)}
redis.register_function{
    function_name = 'mx_sync_position',
    callback = function(keys, a)
        local pos = redis.call('HGET', keys[1], a[2])
        local new = 0
        if not pos then
            pos = redis.call('INCR', 'mx:stream')
            redis.call('HSET', keys[1], a[2], pos)
            redis.call('ZADD', 'mx:{' .. a[1] .. '}:timeline', pos, a[2])
            new = 1
        end
        if a[3] ~= '' then
            redis.call('PUBLISH', a[3],
                       a[4] .. ' ' .. cjson.encode({ event_id = a[2] }))
        end
        return { tonumber(pos), new }
    end
}


-- mx_sync_membership: a user's membership of a room changed
--   KEYS[1]  mx:{<user_id>}:rooms
--   ARGV     room_id, membership ('' when gone), position, the member
--            event's ID ('' when gone)
--   reply:   'OK'
redis.register_function{
    function_name = 'mx_sync_membership',
    callback = function(keys, a)
        if a[2] == '' then
            redis.call('HDEL', keys[1], a[1])
        else
            redis.call('HSET', keys[1], a[1], a[2] .. ' ' .. a[3])
        end
        -- the room keeps the history, for history visibility
        local user = string.match(keys[1], '^mx:{(.*)}:rooms$')
        if user then
            redis.call('ZADD', 'mx:{' .. a[1] .. '}:mhist:' .. user, a[3],
                       a[3] .. ' ' .. (a[2] == '' and 'leave' or a[2]) ..
                       ' ' .. (a[4] or ''))
        end
        return 'OK'
    end
}


-- mx_sync_visibility: the room's history visibility changed at a position
--   KEYS[1]  mx:{<room_id>}:hvhist
--   ARGV     room_id, event_id of the m.room.history_visibility event ('' if
--            the state entry went), position
--   reply:   the visibility recorded
redis.register_function{
    function_name = 'mx_sync_visibility',
    callback = function(keys, a)
        local v = 'shared'
        if a[2] ~= '' then
            local ok, ev = pcall(cjson.decode,
                redis.call('HGET', 'mx:{' .. a[1] .. '}:pdu', a[2]) or '')
            if ok and type(ev) == 'table' and type(ev.content) == 'table'
               and type(ev.content.history_visibility) == 'string' then
                v = ev.content.history_visibility
            end
        end
        redis.call('ZADD', keys[1], a[3], a[3] .. ' ' .. v)
        return v
    end
}
