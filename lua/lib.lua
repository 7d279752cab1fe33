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


-- Reads that many syncs of one call share (mx_sync_many): rread is
-- redis.call, but inside with_read_memo the same read (a room's timeline,
-- its receipts, who changed presence since a position...) is made once.
-- Only for keys the call does not write.
local read_memo = nil

local function rread(...)
    if not read_memo then return redis.call(...) end
    local k = table.concat({ ... }, '\0')
    local v = read_memo[k]
    if v == nil then
        v = redis.call(...)
        read_memo[k] = v
    end
    return v
end

local function with_read_memo(f)
    read_memo = {}
    local ok, r = pcall(f)
    read_memo = nil
    if not ok then error(r, 0) end
    return r
end


-- mx_version
--   keys: none   args: none
--   reply: the library version (a string)
redis.register_function{
    function_name = 'mx_version',
    callback = function() return VERSION end,
    flags = { 'no-writes', 'allow-stale' }
}
