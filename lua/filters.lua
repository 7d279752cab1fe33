
-- Filters of POST /user/{userId}/filter.
--
--   mx:{<user_id>}:filters    hash: <filter_id> -> the filter, canonical JSON
--                                   next -> the last filter ID given out
--                                   sha:<sha1 of the JSON> -> its filter_id
--
-- Filter IDs are decimal numbers.  The same filter uploaded again gets the
-- ID it got the first time (clients upload theirs at every start), so the
-- hash grows with the distinct filters of a user, not with their logins.
-- The module reads a filter with HGET (only IDs made of digits, so never
-- "next" or "sha:...").

-- mx_filter_put: store a filter, or find it stored already
--   KEYS[1]  mx:{<user_id>}:filters
--   ARGV[1]  the filter, canonical JSON (checked by the module)
--   reply:   its filter ID (a string)
redis.register_function{
    function_name = 'mx_filter_put',
    callback = function(keys, args)
        local sha = 'sha:' .. redis.sha1hex(args[1])
        local id = redis.call('HGET', keys[1], sha)
        if id then return id end
        id = tostring(redis.call('HINCRBY', keys[1], 'next', 1))
        redis.call('HSET', keys[1], id, args[1], sha, id)
        return id
    end
}
