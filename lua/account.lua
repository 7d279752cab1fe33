
-- mx_account_data_put: store one account data event of a user
--   KEYS[1]  mx:{<user_id>}:account_data, or
--            mx:{<user_id>}:room_account_data:<room_id>
--   ARGV[1]  the event type
--   ARGV[2]  its content, canonical JSON
--   reply:   'OK'
redis.register_function{
    function_name = 'mx_account_data_put',
    callback = function(keys, args)
        redis.call('HSET', keys[1], args[1], args[2])
        return 'OK'
    end
}
