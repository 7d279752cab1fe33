
-- Users, devices and their tokens.
--
--   mx:{<user_id>}:user                     hash: password, created_ts,
--                                           guest, admin, deactivated
--   mx:{<user_id>}:profile                  hash: displayname, avatar_url, ...
--   mx:{<user_id>}:devices                  set of device IDs
--   mx:{<user_id>}:device:<device_id>       hash: display_name, created_ts,
--                                           token, refresh (hashes)
--   mx:{<user_id>}:token:<hash>             hash: user_id, device_id, guest,
--                                           expires, prev_refresh,
--                                           last_seen_ts, last_seen_ip
--   mx:{<user_id>}:refresh:<hash>           hash: device_id, prev
--
-- Each function is called with the user's key mx:{<user_id>}:user as KEYS[1]
-- and touches only keys with the same hash tag, so a user's data is always
-- in one Redis Cluster slot and each operation is atomic.

local function ukey(user, suffix)
    return 'mx:{' .. user .. '}:' .. suffix
end

-- forget a device: its tokens, its refresh token, its keys, the device
-- itself (the caller records the device list change: keys_changed)
local function device_delete(user, device_id)
    local dk = ukey(user, 'device:' .. device_id)
    local t = redis.call('HMGET', dk, 'token', 'refresh')
    if t[1] then redis.call('DEL', ukey(user, 'token:' .. t[1])) end
    if t[2] then redis.call('DEL', ukey(user, 'refresh:' .. t[2])) end
    redis.call('DEL', dk)
    redis.call('SREM', ukey(user, 'devices'), device_id)
    device_keys_drop(user, device_id)
end

local function devices_delete_all(user, except)
    local ids = redis.call('SMEMBERS', ukey(user, 'devices'))
    for _, id in ipairs(ids) do
        if id ~= except then device_delete(user, id) end
    end
end

-- a new access token (and refresh token) for a device, created if needed;
-- the device's previous tokens stop working
local function device_login(user, device_id, display_name, access, refresh,
                            expires, now, guest, prev_refresh)
    local dk = ukey(user, 'device:' .. device_id)
    local old = redis.call('HMGET', dk, 'token', 'refresh')

    if old[1] then redis.call('DEL', ukey(user, 'token:' .. old[1])) end
    if old[2] and old[2] ~= prev_refresh then
        redis.call('DEL', ukey(user, 'refresh:' .. old[2]))
    end

    if redis.call('EXISTS', dk) == 0 then
        redis.call('HSET', dk, 'created_ts', now)
        if display_name ~= '' then
            redis.call('HSET', dk, 'display_name', display_name)
        end
    end

    redis.call('HSET', dk, 'token', access)
    if refresh ~= '' then
        redis.call('HSET', dk, 'refresh', refresh)
    else
        redis.call('HDEL', dk, 'refresh')
    end
    redis.call('SADD', ukey(user, 'devices'), device_id)

    local tk = ukey(user, 'token:' .. access)
    redis.call('HSET', tk, 'user_id', user, 'device_id', device_id,
               'guest', guest, 'expires', expires)
    if prev_refresh ~= '' then
        redis.call('HSET', tk, 'prev_refresh', prev_refresh)
    end

    if refresh ~= '' then
        local rk = ukey(user, 'refresh:' .. refresh)
        redis.call('HSET', rk, 'device_id', device_id)
        if prev_refresh ~= '' then
            redis.call('HSET', rk, 'prev', prev_refresh)
        end
    end
end


-- mx_register: create a user, and log a device in unless device_id is ''
--   KEYS[1]  mx:{<user_id>}:user
--   ARGV     user_id, password hash ('' for none), now, guest ('0'|'1'),
--            admin ('0'|'1'), displayname, device_id, device display name,
--            access token hash, refresh token hash (''), expires (ms, 0)
--   reply:   'OK', or MX 400 M_USER_IN_USE (the name is taken, or was:
--            a deactivated user's name is never given out again)
redis.register_function{
    function_name = 'mx_register',
    callback = function(keys, a)
        local user = a[1]
        if redis.call('HSETNX', keys[1], 'created_ts', a[3]) == 0 then
            return mx_error(400, 'M_USER_IN_USE', 'User ID already taken.')
        end
        redis.call('HSET', keys[1], 'guest', a[4], 'admin', a[5])
        if a[2] ~= '' then
            redis.call('HSET', keys[1], 'password', a[2])
        end
        if a[6] ~= '' then
            redis.call('HSET', ukey(user, 'profile'), 'displayname', a[6])
        end
        if a[7] ~= '' then
            device_login(user, a[7], a[8], a[9], a[10], a[11], a[3], a[4], '')
        end
        return 'OK'
    end
}


-- mx_user_get: what login and user-interactive auth need of a user
--   KEYS[1]  mx:{<user_id>}:user
--   reply:   {} when there is no such user, else
--            {password or '', deactivated ('0'|'1'), guest, admin}
redis.register_function{
    function_name = 'mx_user_get',
    callback = function(keys)
        local u = redis.call('HMGET', keys[1], 'created_ts', 'password',
                             'deactivated', 'guest', 'admin')
        if not u[1] then return {} end
        return { u[2] or '', u[3] or '0', u[4] or '0', u[5] or '0' }
    end,
    flags = { 'no-writes' }
}


-- mx_login: log a device in after the password was checked
--   KEYS[1]  mx:{<user_id>}:user
--   ARGV     user_id, device_id, device display name, access token hash,
--            refresh token hash (''), expires (ms, 0), now
--   reply:   'OK', or MX 403 M_FORBIDDEN when the user is gone or
--            deactivated since (the same answer as a wrong password)
redis.register_function{
    function_name = 'mx_login',
    callback = function(keys, a)
        local u = redis.call('HMGET', keys[1], 'created_ts', 'deactivated',
                             'guest')
        if not u[1] or u[2] == '1' then
            return mx_error(403, 'M_FORBIDDEN', 'Invalid username or password')
        end
        device_login(a[1], a[2], a[3], a[4], a[5], a[6], a[7], u[3] or '0', '')
        return 'OK'
    end
}


-- mx_token_get: who an access token belongs to
--   KEYS[1]  mx:{<user_id>}:token:<base64 sha256 of the token>
--   ARGV[1]  now, in ms since the epoch
--   ARGV[2]  the client's address
--   reply:   {'ok', user_id, device_id, is_guest ('0'|'1')}
--            {'unknown'} when there is no such token
--            {'expired'} when it has expired (the client should refresh)
-- Also: the first use of a refreshed token retires the refresh token it
-- was made from, and last_seen (time to the minute, address) is kept.
redis.register_function{
    function_name = 'mx_token_get',
    callback = function(keys, args)
        local t = redis.call('HMGET', keys[1], 'user_id', 'device_id',
                             'guest', 'expires', 'prev_refresh',
                             'last_seen_ts', 'last_seen_ip')
        if not t[1] then
            return { 'unknown' }
        end
        local now = tonumber(args[1])
        local expires = tonumber(t[4] or '0') or 0
        if expires > 0 and expires <= now then
            return { 'expired' }
        end
        if t[5] then
            redis.call('DEL', ukey(t[1], 'refresh:' .. t[5]))
            redis.call('HDEL', keys[1], 'prev_refresh')
        end
        -- kept on the token (one key read per request); mx_devices looks
        -- here for a device's last_seen
        if now - (tonumber(t[6] or '0') or 0) >= 60000 or t[7] ~= args[2] then
            redis.call('HSET', keys[1], 'last_seen_ts', now,
                       'last_seen_ip', args[2] or '')
        end
        return { 'ok', t[1], t[2] or '', t[3] or '0' }
    end
}


-- mx_refresh: a new access and refresh token for the refresh token given
--   KEYS[1]  mx:{<user_id>}:refresh:<hash of the refresh token used>
--   ARGV     user_id, refresh token hash used, new access token hash,
--            new refresh token hash, expires, now
--   reply:   device_id, or MX 401 M_UNKNOWN_TOKEN
-- The token used stays valid until the new access or refresh token is
-- first used (the client may not have received the answer); using it
-- proves the one it was made from obsolete.
redis.register_function{
    function_name = 'mx_refresh',
    callback = function(keys, a)
        local user = a[1]
        local r = redis.call('HMGET', keys[1], 'device_id', 'prev')
        if not r[1] then
            return mx_error(401, 'M_UNKNOWN_TOKEN', 'Unknown refresh token')
        end
        if r[2] then
            redis.call('DEL', ukey(user, 'refresh:' .. r[2]))
            redis.call('HDEL', keys[1], 'prev')
        end
        local guest = redis.call('HGET', ukey(user, 'user'), 'guest') or '0'
        device_login(user, r[1], '', a[3], a[4], a[5], a[6], guest, a[2])
        return r[1]
    end
}


-- mx_logout: forget one device (and its tokens), or all of them
--   KEYS[1]  mx:{<user_id>}:user
--   ARGV     user_id, device_id ('' for every device)
--   reply:   'OK'
redis.register_function{
    function_name = 'mx_logout',
    callback = function(keys, a)
        if a[2] == '' then
            devices_delete_all(a[1], nil)
        else
            device_delete(a[1], a[2])
        end
        keys_changed(a[1], a[2] ~= '' and { { id = a[2], deleted = true } }
                           or nil)
        return 'OK'
    end
}


-- mx_devices_delete: forget the devices named
--   KEYS[1]  mx:{<user_id>}:user
--   ARGV     user_id, device_id...
--   reply:   'OK'
redis.register_function{
    function_name = 'mx_devices_delete',
    callback = function(keys, a)
        local gone = {}
        for i = 2, #a do
            device_delete(a[1], a[i])
            gone[#gone + 1] = { id = a[i], deleted = true }
        end
        keys_changed(a[1], gone)
        return 'OK'
    end
}


-- mx_devices: a user's devices, or one of them
--   KEYS[1]  mx:{<user_id>}:user
--   ARGV     user_id, device_id ('' for all)
--   reply:   {{device_id, display_name|'', last_seen_ip|'', last_seen_ts|''},
--            ...}, sorted by device ID
redis.register_function{
    function_name = 'mx_devices',
    callback = function(keys, a)
        local ids
        if a[2] ~= '' then
            ids = { a[2] }
        else
            ids = redis.call('SMEMBERS', ukey(a[1], 'devices'))
            table.sort(ids)
        end
        local out = {}
        for _, id in ipairs(ids) do
            local d = redis.call('HMGET', ukey(a[1], 'device:' .. id),
                                 'created_ts', 'display_name', 'token')
            if d[1] then
                local seen = { d[1], '' }
                if d[3] then
                    local s = redis.call('HMGET', ukey(a[1], 'token:' .. d[3]),
                                         'last_seen_ts', 'last_seen_ip')
                    if s[1] then seen = { s[1], s[2] or '' } end
                end
                out[#out + 1] = { id, d[2] or '', seen[2], seen[1] }
            end
        end
        return out
    end,
    flags = { 'no-writes' }
}


-- mx_device_rename: set a device's display name
--   KEYS[1]  mx:{<user_id>}:user
--   ARGV     user_id, device_id, display name
--   reply:   1, or 0 when there is no such device
redis.register_function{
    function_name = 'mx_device_rename',
    callback = function(keys, a)
        local dk = ukey(a[1], 'device:' .. a[2])
        if redis.call('EXISTS', dk) == 0 then return 0 end
        redis.call('HSET', dk, 'display_name', a[3])
        -- the name is in the device's keys as others see them
        keys_changed(a[1], { { id = a[2], name = a[3],
                               keys = redis.call('HGET', ukey(a[1], 'devkeys'),
                                                 a[2]) or nil } })
        return 1
    end
}


-- mx_password_set: a new password hash; optionally log out every other device
--   KEYS[1]  mx:{<user_id>}:user
--   ARGV     user_id, password hash, logout ('0'|'1'), device to keep ('')
--   reply:   'OK', or MX 403 M_FORBIDDEN for a deactivated user
redis.register_function{
    function_name = 'mx_password_set',
    callback = function(keys, a)
        local u = redis.call('HMGET', keys[1], 'created_ts', 'deactivated')
        if not u[1] or u[2] == '1' then
            return mx_error(403, 'M_FORBIDDEN', 'This account is deactivated')
        end
        redis.call('HSET', keys[1], 'password', a[2])
        if a[3] == '1' then
            devices_delete_all(a[1], a[4])
            keys_changed(a[1])
        end
        return 'OK'
    end
}


-- mx_deactivate: the user can never log in again, every token dies, the
-- profile is cleared; the user record stays so the name is never reused
--   KEYS[1]  mx:{<user_id>}:user
--   ARGV     user_id, now
--   reply:   'OK'
redis.register_function{
    function_name = 'mx_deactivate',
    callback = function(keys, a)
        redis.call('HSET', keys[1], 'deactivated', '1', 'deactivated_ts', a[2])
        redis.call('HDEL', keys[1], 'password')
        -- other servers hear of every device gone; nothing follows, so
        -- the numbering of the updates goes too
        local gone = {}
        for _, d in ipairs(redis.call('SMEMBERS', ukey(a[1], 'devices'))) do
            gone[#gone + 1] = { id = d, deleted = true }
        end
        devices_delete_all(a[1], nil)
        keys_changed(a[1], gone)
        redis.call('DEL', ukey(a[1], 'profile'), ukey(a[1], 'devlist_seq'))
        return 'OK'
    end
}


-- mx_profile_get: a user's profile
--   KEYS[1]  mx:{<user_id>}:user
--   ARGV     user_id
--   reply:   nil for no such (or a deactivated) user, else the profile hash
--            as {field, value, ...}
redis.register_function{
    function_name = 'mx_profile_get',
    callback = function(keys, a)
        local u = redis.call('HMGET', keys[1], 'created_ts', 'deactivated')
        if not u[1] or u[2] == '1' then return false end
        return redis.call('HGETALL', ukey(a[1], 'profile'))
    end,
    flags = { 'no-writes' }
}


-- mx_profile_set: set or remove one profile field
--   KEYS[1]  mx:{<user_id>}:user
--   ARGV     user_id, field, value (JSON-encoded), remove ('0'|'1'),
--            the largest the whole profile may be (bytes)
--   reply:   'OK', MX 404 M_NOT_FOUND for no such user,
--            MX 400 M_PROFILE_TOO_LARGE when it would grow past the limit
redis.register_function{
    function_name = 'mx_profile_set',
    callback = function(keys, a)
        local u = redis.call('HMGET', keys[1], 'created_ts', 'deactivated')
        if not u[1] or u[2] == '1' then
            return mx_error(404, 'M_NOT_FOUND', 'Profile not found')
        end
        local pk = ukey(a[1], 'profile')
        if a[4] == '1' then
            redis.call('HDEL', pk, a[2])
            return 'OK'
        end
        local size = #a[2] + #a[3]
        local all = redis.call('HGETALL', pk)
        for i = 1, #all, 2 do
            if all[i] ~= a[2] then size = size + #all[i] + #all[i + 1] end
        end
        if size > tonumber(a[5]) then
            return mx_error(400, 'M_PROFILE_TOO_LARGE',
                            'The profile would be too large')
        end
        redis.call('HSET', pk, a[2], a[3])
        return 'OK'
    end
}
