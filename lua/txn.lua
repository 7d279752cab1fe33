
-- Transaction IDs: a client's retry of a send gets the event of the first.
--
--   mx:{<user_id>}:txn:<device_id>  hash: txn_id -> "<event_id>\n<room_id>"
--                                   while the event is on its way, then
--                                   "\n<pdu>\n<version>" too, until accepted


-- mx_txn_get
--   KEYS[1]  mx:{<user_id>}:txn:<device_id>
--   ARGV     txn_id
--   reply:   the record, or false
redis.register_function{
    function_name = 'mx_txn_get',
    callback = function(keys, a)
        return redis.call('HGET', keys[1], a[1])
    end,
    flags = { 'no-writes' }
}


-- mx_txn_put: remember (or forget, with value '') a transaction
--   KEYS[1]  mx:{<user_id>}:txn:<device_id>
--   ARGV     txn_id, value ('' to forget)
--   reply:   'OK'
redis.register_function{
    function_name = 'mx_txn_put',
    callback = function(keys, a)
        if a[2] == '' then
            redis.call('HDEL', keys[1], a[1])
        else
            redis.call('HSET', keys[1], a[1], a[2])
        end
        return 'OK'
    end
}
