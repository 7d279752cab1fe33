
-- Other servers' signing keys, as fetched by the fedsender for the module
-- (request signatures) and the roomserver (event signatures), and served
-- again by the notary (/_matrix/key/v2/query).  The server name is the
-- hash tag, so one server's keys share a slot.
--
--   mx:serverkeys:{<server>}          hash: key ID -> unpadded base64
--                                     ed25519 public key; old keys stay,
--                                     they verify old events
--   mx:serverkeys:{<server>}:until    hash: key ID -> the last millisecond
--                                     the key may sign at: valid_until_ts of
--                                     a verify key, expired_ts of an old one,
--                                     at most 7 days after the fetch
--   mx:serverkeys:{<server>}:json     string: the server's last key
--                                     response, as it signed it
--   mx:serverkeys:{<server>}:fetched  string: when it was fetched (ms)
--   mx:serverkeys:{<server>}:failed   string: when a fetch last failed (ms)


-- The spec (room versions 5 on, and GET /_matrix/key/v2/server): a key is
-- valid until the lesser of valid_until_ts and 7 days into the future, so
-- that a key published as valid for years can still be revoked.  "The
-- future" is the fetch: a key is taken for at most 7 days after it, then
-- fetched again (the request check and the keys job both want it valid).
local SERVERKEYS_CAP = 7 * 86400 * 1000


-- mx_serverkeys_put: keys fetched (or received from a notary)
--   KEYS[1]  mx:serverkeys:{<server>}
--   ARGV     server, the response as received ('' to keep the one
--            stored), fetched at (ms), then triples: key ID, public key,
--            until (ms; kept at most 7 days after the fetch)
--   reply:   the number of keys given
redis.register_function{
    function_name = 'mx_serverkeys_put',
    callback = function(keys, a)
        local k = keys[1]
        local cap = (tonumber(a[3]) or 0) + SERVERKEYS_CAP
        for i = 4, #a - 2, 3 do
            redis.call('HSET', k, a[i], a[i + 1])
            -- a key's window only grows: a stale copy from a notary does
            -- not shorten what the server itself said (but nothing stays
            -- beyond the cap)
            local old = tonumber(redis.call('HGET', k .. ':until', a[i]))
            local new = math.min(tonumber(a[i + 2]) or 0, cap)
            if not old or new > old or old > cap then
                redis.call('HSET', k .. ':until', a[i], new)
            end
        end
        if a[2] ~= '' then redis.call('SET', k .. ':json', a[2]) end
        redis.call('SET', k .. ':fetched', a[3])
        redis.call('DEL', k .. ':failed')
        return math.floor((#a - 3) / 3)
    end
}


-- mx_serverkeys_failed: a fetch failed (the fedsender waits before the
-- next one)
--   KEYS[1]  mx:serverkeys:{<server>}
--   ARGV     server, now (ms)
--   reply:   'OK'
redis.register_function{
    function_name = 'mx_serverkeys_failed',
    callback = function(keys, a)
        redis.call('SET', keys[1] .. ':failed', a[2])
        return 'OK'
    end
}


-- mx_serverkeys_get: what is known of a server's keys
--   KEYS[1]  mx:serverkeys:{<server>}
--   ARGV     server, key IDs (none: all)
--   reply:   {fetched (ms, 0: never), failed (ms, 0: not since),
--             the last response or false, {key ID, public key, until}...}
--            (a key not known is left out)
redis.register_function{
    function_name = 'mx_serverkeys_get',
    callback = function(keys, a)
        local k = keys[1]
        local ids = {}
        for i = 2, #a do ids[#ids + 1] = a[i] end
        if #ids == 0 then ids = redis.call('HKEYS', k) end
        local out = {
            tonumber(redis.call('GET', k .. ':fetched')) or 0,
            tonumber(redis.call('GET', k .. ':failed')) or 0,
            redis.call('GET', k .. ':json')
        }
        for _, id in ipairs(ids) do
            local pk = redis.call('HGET', k, id)
            if pk then
                out[#out + 1] = { id, pk,
                    tonumber(redis.call('HGET', k .. ':until', id)) or 0 }
            end
        end
        return out
    end,
    flags = { 'no-writes' }
}
