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


-- a Matrix error: the module answers "MX <status> <errcode> <message>"
-- with that status and body
local function mx_error(status, errcode, message)
    return redis.error_reply('MX ' .. status .. ' ' .. errcode .. ' ' .. message)
end


-- mx_version
--   keys: none   args: none
--   reply: the library version (a string)
redis.register_function{
    function_name = 'mx_version',
    callback = function() return VERSION end,
    flags = { 'no-writes', 'allow-stale' }
}
