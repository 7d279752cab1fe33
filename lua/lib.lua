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


-- Outbound EDUs: mx:edus, the fedsender's stream (lua/fedq.lua queues
-- them).  Entries: kind 'edu', room (to the servers of the room's joined
-- members) or dest (one server), edu (the EDU's JSON), keep ('1': never
-- dropped, however long the destination is down).

-- the servers with a joined member of a room (mx:{<room>}:servers, which
-- mx_room_store keeps), made from the members once for a room older than
-- that key: a hash of server -> members joined
local function room_servers_key(room)
    local sk = 'mx:{' .. room .. '}:servers'
    if redis.call('EXISTS', sk) == 0 then
        local m = redis.call('HGETALL', 'mx:{' .. room .. '}:members')
        for i = 1, #m, 2 do
            local srv = m[i + 1] == 'join' and string.match(m[i], '^@[^:]*:(.+)$')
            if srv then redis.call('HINCRBY', sk, srv, 1) end
        end
    end
    return sk
end

-- a room with a joined member of another server than self
local function edu_room_remote(room, self)
    local sk = room_servers_key(room)
    local n = redis.call('HLEN', sk)
    return n > 1 or (n == 1 and redis.call('HEXISTS', sk, self) == 0)
end

local function edu_out(where, to, edu, keep)
    redis.call('XADD', 'mx:edus', '*', 'kind', 'edu', where, to, 'edu', edu,
               'keep', keep and '1' or '0')
end

-- the servers other than the user's own with a member joined to a room
-- the user is joined to (given the user's rooms, HGETALL of rooms)
local function edu_user_servers(user, rooms)
    local self = string.match(user, '^@[^:]*:(.+)$')
    local out, seen = {}, {}
    for i = 1, #rooms, 2 do
        if string.sub(rooms[i + 1], 1, 5) == 'join ' then
            local sk = room_servers_key(rooms[i])
            for _, s in ipairs(redis.call('HKEYS', sk)) do
                if s ~= self and not seen[s] then
                    seen[s] = true
                    out[#out + 1] = s
                end
            end
        end
    end
    return out
end
