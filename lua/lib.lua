#!lua name=matrix
--
-- The homeserver's Redis function library.
--
-- scripts/gen-lua.sh joins lua/lib.lua (this file, first) and every other
-- lua/*.lua into one library and stamps the VERSION placeholder below with
-- a hash of the text.
-- `matrixctl functions` and every daemon load it at start (FUNCTION LOAD
-- REPLACE when the version in Redis differs); the nginx module checks the
-- version on every connect and refuses to serve against another one.
--
-- One function per operation.  Each opens with a comment giving its keys,
-- its arguments and its reply.  Keys follow docs/redis.md: every key starts
-- with "mx:", a room's keys carry {room_id}, a user's keys carry {user_id}.

local VERSION = '@VERSION@'


-- mx_version
--   keys: none   args: none
--   reply: the library version (a string)
redis.register_function{
    function_name = 'mx_version',
    callback = function() return VERSION end,
    flags = { 'no-writes', 'allow-stale' }
}


-- mx_token_get: who an access token belongs to
--   KEYS[1]  mx:{<user_id>}:token:<base64 sha256 of the token>
--   ARGV[1]  now, in ms since the epoch
--   reply:   {'ok', user_id, device_id, is_guest ('0'|'1')}
--            {'unknown'} when there is no such token
--            {'expired'} when it has expired (the client should refresh)
redis.register_function{
    function_name = 'mx_token_get',
    callback = function(keys, args)
        local t = redis.call('HMGET', keys[1], 'user_id', 'device_id',
                             'guest', 'expires')
        if not t[1] then
            return { 'unknown' }
        end
        local expires = tonumber(t[4] or '0') or 0
        if expires > 0 and expires <= tonumber(args[1]) then
            return { 'expired' }
        end
        return { 'ok', t[1], t[2] or '', t[3] or '0' }
    end,
    flags = { 'no-writes' }
}
