
-- End-to-end encryption: devices' identity keys, one-time and fallback
-- keys, cross-signing keys and signatures, and the device list changes
-- that /sync and /keys/changes report.
--
--   mx:{<user_id>}:devkeys              hash: device_id -> device keys
--   mx:{<user_id>}:otk:<device_id>      hash: "<algorithm>:<key_id>" -> key
--   mx:{<user_id>}:otkq:<device_id>     sorted set: "<algorithm>:<key_id>"
--                                       by upload order: claimed oldest
--                                       first
--   mx:{<user_id>}:fallback:<device_id> hash: id:<alg> (key ID), key:<alg>
--                                       (the key), used:<alg> ('0'|'1')
--   mx:{<user_id>}:xsign                hash: master, self_signing,
--                                       user_signing -> key; <kind>_pk ->
--                                       its public key
--   mx:{<user_id>}:keysigs              hash: "<target key>\31<signer>\31
--                                       <signer's key ID>" -> signature:
--                                       signatures uploaded apart from the
--                                       keys they sign (target: a device
--                                       ID or a cross-signing public key)
--   mx:{<user_id>}:sigpos               sorted set: users whose master key
--                                       this user signed, by position
--   mx:devlists                         sorted set: user_id by the stream
--                                       position of its last device list
--                                       change (keys, devices, cross-
--                                       signing keys, own signatures)
--   mx:{<room_id>}:mpos                 sorted set: user_id by the position
--                                       of its last membership change in
--                                       the room (mx_sync_position)
--
-- Keys arrive as canonical JSON written by the module; they are compared
-- as strings and stored as they come, never decoded here.
--
-- A device list change takes the next position of mx:stream, the one
-- stream every /sync section shares, and wakes the parked /sync requests
-- of the rooms the user is joined to and of the user (mx:wake).

local function kkey(user, suffix)
    return 'mx:{' .. user .. '}:' .. suffix
end


-- the user's device list changed: a position, and wake who may care.
-- devices (optional): the devices changed, each {id, deleted, keys
-- (canonical JSON), name}; other servers sharing a room with the user get
-- an m.device_list_update per device (mx:edus, kept however long they are
-- down).  Each update takes the next number of mx:{<user>}:devlist_seq,
-- its stream_id, and names the one before as prev_id; a change without a
-- device (once numbering began) takes a number too and sends nothing, so
-- the next update names a prev_id the receiver never had, and it fetches
-- the whole list.
local function keys_changed(user, devices)
    local pos = redis.call('INCR', 'mx:stream')
    redis.call('ZADD', 'mx:devlists', pos, user)
    local rooms = redis.call('HGETALL', kkey(user, 'rooms'))
    for i = 1, #rooms, 2 do
        if string.sub(rooms[i + 1], 1, 5) == 'join ' then
            redis.call('PUBLISH', 'mx:wake', rooms[i])
        end
    end
    redis.call('PUBLISH', 'mx:wake', '- ' .. user)

    local seqk = kkey(user, 'devlist_seq')
    if not devices then
        if redis.call('EXISTS', seqk) == 1 then redis.call('INCR', seqk) end
        return pos
    end
    local servers = edu_user_servers(user, rooms)
    for _, d in ipairs(devices) do
        local sid = redis.call('INCR', seqk)
        if #servers > 0 then
            local f = { '"device_id":' .. cjson.encode(d.id),
                        '"prev_id":' .. (sid > 1 and ('[' .. (sid - 1) .. ']')
                                                  or '[]'),
                        '"stream_id":' .. sid,
                        '"user_id":' .. cjson.encode(user) }
            if d.deleted then f[#f + 1] = '"deleted":true' end
            if d.keys then f[#f + 1] = '"keys":' .. d.keys end
            if d.name then
                f[#f + 1] = '"device_display_name":' .. cjson.encode(d.name)
            end
            table.sort(f)
            local edu = '{"content":{' .. table.concat(f, ',')
                        .. '},"edu_type":"m.device_list_update"}'
            for _, s in ipairs(servers) do
                edu_out('dest', s, edu, true)
            end
        end
    end
    return pos
end


-- forget the signatures uploaded of a key (a device ID or a public key)
-- and, given by, those made by the user's key `by`
local function sigs_drop(user, target, by)
    local sk = kkey(user, 'keysigs')
    target = target .. '\31'
    by = by and ('\31' .. user .. '\31' .. by)
    for _, f in ipairs(redis.call('HKEYS', sk)) do
        if string.sub(f, 1, #target) == target
           or (by and string.sub(f, -#by) == by) then
            redis.call('HDEL', sk, f)
        end
    end
end


-- a device is gone: its keys, one-time and fallback keys, and the
-- signatures of it and by it (the caller records the change)
local function device_keys_drop(user, device)
    redis.call('HDEL', kkey(user, 'devkeys'), device)
    redis.call('DEL', kkey(user, 'otk:' .. device),
               kkey(user, 'otkq:' .. device),
               kkey(user, 'fallback:' .. device))
    sigs_drop(user, device, 'ed25519:' .. device)
end


-- {algorithm, count, ...} of a device's unclaimed one-time keys;
-- signed_curve25519 always, if only as 0
local function otk_counts(user, device)
    local n = { signed_curve25519 = 0 }
    for _, f in ipairs(redis.call('HKEYS', kkey(user, 'otk:' .. device))) do
        local alg = string.match(f, '^([^:]*):')
        if alg then n[alg] = (n[alg] or 0) + 1 end
    end
    local out = {}
    for alg, c in pairs(n) do
        out[#out + 1] = alg
        out[#out + 1] = c
    end
    return out
end


-- {algorithm, ...} of a device's fallback keys not given out yet
local function fallback_unused(user, device)
    local all = redis.call('HGETALL', kkey(user, 'fallback:' .. device))
    local out = {}
    for i = 1, #all, 2 do
        local alg = string.match(all[i], '^used:(.*)$')
        if alg and all[i + 1] == '0' then out[#out + 1] = alg end
    end
    table.sort(out)
    return out
end


-- mx_keys_upload: a device's identity keys, one-time and fallback keys
--   KEYS[1]  mx:{<user_id>}:devkeys
--   ARGV     user_id, device_id, device keys ('' for none), n, then n
--            pairs ("<algorithm>:<key_id>", key) of one-time keys, then
--            triples (algorithm, key_id, key) of fallback keys
--   reply:   {algorithm, count, ...}: the device's one-time keys now;
--            MX 400 M_INVALID_PARAM for a one-time key ID already held
--            with other content (nothing is stored then)
-- Identity keys that differ from those held are a device list change
-- and void the signatures uploaded of the old ones; a
-- fallback key replaces the one of its algorithm and is unused (the same
-- key again changes nothing).
redis.register_function{
    function_name = 'mx_keys_upload',
    callback = function(keys, a)
        local user, device = a[1], a[2]
        local ok = kkey(user, 'otk:' .. device)
        local oq = kkey(user, 'otkq:' .. device)
        local last = 4 + 2 * tonumber(a[4])
        for i = 5, last, 2 do
            local old = redis.call('HGET', ok, a[i])
            if old and old ~= a[i + 1] then
                return mx_error(400, 'M_INVALID_PARAM', 'One-time key ' .. a[i]
                                .. ' already exists with other content')
            end
        end
        local top = redis.call('ZREVRANGE', oq, 0, 0, 'WITHSCORES')
        local seq = tonumber(top[2] or '0')
        for i = 5, last, 2 do
            if redis.call('HSETNX', ok, a[i], a[i + 1]) == 1 then
                seq = seq + 1
                redis.call('ZADD', oq, seq, a[i])
            end
        end
        local fk = kkey(user, 'fallback:' .. device)
        for i = last + 1, #a - 2, 3 do
            local alg = a[i]
            local old = redis.call('HMGET', fk, 'id:' .. alg, 'key:' .. alg)
            if old[1] ~= a[i + 1] or old[2] ~= a[i + 2] then
                redis.call('HSET', fk, 'id:' .. alg, a[i + 1],
                           'key:' .. alg, a[i + 2], 'used:' .. alg, '0')
            end
        end
        local held = redis.call('HGET', keys[1], device)
        if a[3] ~= '' and held ~= a[3] then
            -- signatures of other keys do not hold for these
            if held then sigs_drop(user, device, nil) end
            redis.call('HSET', keys[1], device, a[3])
            keys_changed(user, { { id = device, keys = a[3] } })
        end
        return otk_counts(user, device)
    end
}


local function user_known(user)
    return redis.call('EXISTS', kkey(user, 'user'), kkey(user, 'devices'),
                      kkey(user, 'devkeys'), kkey(user, 'xsign')) > 0
end


-- the keys of a local user as the asker may see them (asker '': another
-- server): {user_id, {device_id, keys, display name or '', ...},
-- {master, self_signing, user_signing ('' unless the asker is the user)},
-- {target key, signer, signer's key ID, signature, ...}}, the signatures
-- of the user's own keys and the asker's; ids: the devices (none: all)
local function keys_of(user, asker, ids)
    local dk = kkey(user, 'devkeys')
    if #ids == 0 then
        ids = redis.call('HKEYS', dk)
        table.sort(ids)
    end
    local devs = {}
    for _, d in ipairs(ids) do
        local k = redis.call('HGET', dk, d)
        if k then
            devs[#devs + 1] = d
            devs[#devs + 1] = k
            devs[#devs + 1] = redis.call('HGET', kkey(user, 'device:' .. d),
                                         'display_name') or ''
        end
    end
    local xs = redis.call('HMGET', kkey(user, 'xsign'), 'master',
                          'self_signing', 'user_signing')
    if user ~= asker then xs[3] = false end
    local sigs = {}
    local all = redis.call('HGETALL', kkey(user, 'keysigs'))
    for j = 1, #all, 2 do
        local t, s, k = string.match(all[j], '^(.-)\31(.-)\31(.*)$')
        if t and (s == user or s == asker) then
            sigs[#sigs + 1] = t
            sigs[#sigs + 1] = s
            sigs[#sigs + 1] = k
            sigs[#sigs + 1] = all[j + 1]
        end
    end
    return { user, devs, { xs[1] or '', xs[2] or '', xs[3] or '' }, sigs }
end


-- mx_keys_query: the keys of local users, as the asker may see them
--   KEYS[1]  mx:{<asker>}:devkeys
--   ARGV     asker ('' for another server), then for each user: user_id,
--            n, n device IDs (n = 0: every device)
--   reply:   for each known user what keys_of() gives
-- It reads the keys of every user named: one Redis, not a Cluster slot.
redis.register_function{
    function_name = 'mx_keys_query',
    callback = function(keys, a)
        local asker = a[1]
        local out = {}
        local i = 2
        while i < #a do
            local user, n = a[i], tonumber(a[i + 1])
            if user_known(user) then
                local ids = {}
                for j = i + 2, i + 1 + n do ids[#ids + 1] = a[j] end
                out[#out + 1] = keys_of(user, asker, ids)
            end
            i = i + 2 + n
        end
        return out
    end,
    flags = { 'no-writes' }
}


-- mx_keys_devices: a local user's device list for another server
-- (GET /_matrix/federation/v1/user/devices)
--   KEYS[1]  mx:{<user_id>}:devkeys
--   ARGV     user_id
--   reply:   {stream_id (mx:{<user_id>}:devlist_seq, 0 before any
--            change), what keys_of() gives for every device}
-- An unknown user has no devices and stream_id 0.
redis.register_function{
    function_name = 'mx_keys_devices',
    callback = function(keys, a)
        local seq = redis.call('GET', kkey(a[1], 'devlist_seq'))
        return { tonumber(seq or '0'), keys_of(a[1], '', {}) }
    end,
    flags = { 'no-writes' }
}


-- a one-time key of a device, gone once given: the oldest of the
-- algorithm; when none is left, the fallback key, marked used and kept
local function otk_take(user, device, alg)
    local ok, oq = kkey(user, 'otk:' .. device), kkey(user, 'otkq:' .. device)
    local prefix = alg .. ':'
    local start = 0
    while true do
        local ids = redis.call('ZRANGE', oq, start, start + 99)
        if #ids == 0 then break end
        for _, id in ipairs(ids) do
            if string.sub(id, 1, #prefix) == prefix then
                local key = redis.call('HGET', ok, id)
                redis.call('HDEL', ok, id)
                redis.call('ZREM', oq, id)
                if key then return id, key end
            end
        end
        start = start + 100
    end
    local fk = kkey(user, 'fallback:' .. device)
    local fb = redis.call('HMGET', fk, 'id:' .. alg, 'key:' .. alg)
    if fb[1] and fb[2] then
        redis.call('HSET', fk, 'used:' .. alg, '1')
        return prefix .. fb[1], fb[2]
    end
    return nil
end


-- mx_keys_claim: one key for each device and algorithm asked for
--   KEYS[1]  mx:{<asker>}:devkeys
--   ARGV     (user_id, device_id, algorithm) for each
--   reply:   {user_id, device_id, "<algorithm>:<key_id>", key, ...} for
--            the devices that had one
-- It takes keys of every user named, at once: one Redis, not a Cluster
-- slot.
redis.register_function{
    function_name = 'mx_keys_claim',
    callback = function(keys, a)
        local out = {}
        for i = 1, #a - 2, 3 do
            local id, key = otk_take(a[i], a[i + 1], a[i + 2])
            if id then
                out[#out + 1] = a[i]
                out[#out + 1] = a[i + 1]
                out[#out + 1] = id
                out[#out + 1] = key
            end
        end
        return out
    end
}


-- Users whose device lists the user should look at again since a
-- position (an initial sync: none): {changed}, {left}.
--
--   changed  those sharing a joined room with the user whose device list
--            changed (the user too); those whose master key the user
--            signed; those who share a room with the user for the first
--            time since (a room the user joined: all its members; a member
--            who joined one of the user's rooms)
--   left     those whose membership changed in a room the user shares, or
--            who were in a room the user left, and who now share no room
--            with the user
-- Nobody is in both.  A user that changed after `since` is given however
-- often it changed, so an upper bound would only hide changes: there is
-- none (the spec makes /keys/changes' `to` a hint).  rooms (the user's
-- room list) and quiet (joined rooms with no change since) may be given
-- by a caller that read them already.
local function keys_devlists(user, since, rooms, quiet)
    local changed, left, seen, maybe = {}, {}, {}, {}
    if not since then return changed, left end
    quiet = quiet or {}
    local function change(u)
        if not seen[u] then
            seen[u] = true
            changed[#changed + 1] = u
        end
    end

    -- the user's rooms are read once for every "do we share a room?"
    rooms = rooms or redis.call('HGETALL', kkey(user, 'rooms'))
    local joined = {}
    for i = 1, #rooms, 2 do
        if string.sub(rooms[i + 1], 1, 5) == 'join ' then
            joined[#joined + 1] = 'mx:{' .. rooms[i] .. '}:members'
        end
    end
    local function shares(u)
        if u == user then return true end
        for _, mk in ipairs(joined) do
            if rread('HGET', mk, u) == 'join' then return true end
        end
        return false
    end

    for _, u in ipairs(rread('ZRANGEBYSCORE', 'mx:devlists',
                                  '(' .. since, '+inf')) do
        if shares(u) then change(u) end
    end
    for _, u in ipairs(redis.call('ZRANGEBYSCORE', kkey(user, 'sigpos'),
                                  '(' .. since, '+inf')) do
        change(u)
    end

    for i = 1, #rooms, 2 do
        local room = rooms[i]
        local m, pos = string.match(rooms[i + 1], '^(%S+) (%d+)$')
        pos = tonumber(pos)
        local mk = 'mx:{' .. room .. '}:members'
        local mp = 'mx:{' .. room .. '}:mpos'
        if m == 'join' and pos and pos > since then
            local mem = redis.call('HGETALL', mk)
            for j = 1, #mem, 2 do
                if mem[j + 1] == 'join' and mem[j] ~= user then
                    change(mem[j])
                end
            end
        elseif m == 'join' and not quiet[room] then
            for _, u in ipairs(rread('ZRANGEBYSCORE', mp, '(' .. since,
                                          '+inf')) do
                if u ~= user then
                    if rread('HGET', mk, u) == 'join' then
                        change(u)
                    else
                        maybe[#maybe + 1] = u
                    end
                end
            end
        elseif (m == 'leave' or m == 'ban') and pos and pos > since then
            local mem = redis.call('HGETALL', mk)
            for j = 1, #mem, 2 do
                if mem[j + 1] == 'join' then maybe[#maybe + 1] = mem[j] end
            end
            for _, u in ipairs(redis.call('ZRANGEBYSCORE', mp, '(' .. since,
                                          '+inf')) do
                maybe[#maybe + 1] = u
            end
        end
    end

    for _, u in ipairs(maybe) do
        if not seen[u] and u ~= user then
            seen[u] = true
            if not shares(u) then left[#left + 1] = u end
        end
    end
    return changed, left
end


-- what /sync gives of e2ee for a device since a position:
-- {{changed}, {left}, {algorithm, one-time key count, ...},
--  {unused fallback key algorithm, ...}}
local function keys_sync(user, device, since, rooms, quiet)
    local changed, left = keys_devlists(user, since, rooms, quiet)
    return { changed, left, otk_counts(user, device),
             fallback_unused(user, device) }
end


-- mx_keys_changes: whose device lists changed since a position
--   KEYS[1]  mx:{<user_id>}:rooms
--   ARGV     user_id, from (a stream position)
--   reply:   {{changed user_id, ...}, {left user_id, ...}}
redis.register_function{
    function_name = 'mx_keys_changes',
    callback = function(keys, a)
        local changed, left = keys_devlists(a[1], tonumber(a[2]))
        return { changed, left }
    end,
    flags = { 'no-writes' }
}


-- mx_keys_xsign_get: a user's cross-signing keys
--   KEYS[1]  mx:{<user_id>}:xsign
--   reply:   {master, self_signing, user_signing}, '' for those missing
redis.register_function{
    function_name = 'mx_keys_xsign_get',
    callback = function(keys)
        local xs = redis.call('HMGET', keys[1], 'master', 'self_signing',
                              'user_signing')
        return { xs[1] or '', xs[2] or '', xs[3] or '' }
    end,
    flags = { 'no-writes' }
}


-- mx_keys_xsign_put: store cross-signing keys
--   KEYS[1]  mx:{<user_id>}:xsign
--   ARGV     user_id, authenticated ('1': the user passed
--            user-interactive auth), then (kind, key, public key) for
--            each key: kind master, self_signing or user_signing
--   reply:   'OK'; 'same' when every key is the one held (nothing
--            changes); 'uia' when the user has a master key, the keys
--            differ and the user is not authenticated (nothing changes);
--            MX 403 M_FORBIDDEN when a public key is one of the user's
--            device IDs
-- A key replaced takes the signatures uploaded of it and by it along.
redis.register_function{
    function_name = 'mx_keys_xsign_put',
    callback = function(keys, a)
        local user = a[1]
        local same = true
        for i = 3, #a - 2, 3 do
            if redis.call('HGET', keys[1], a[i]) ~= a[i + 1] then
                same = false
            end
        end
        if same then return 'same' end
        if a[2] ~= '1' and redis.call('HEXISTS', keys[1], 'master') == 1 then
            return 'uia'
        end
        for i = 3, #a - 2, 3 do
            if redis.call('SISMEMBER', kkey(user, 'devices'), a[i + 2]) == 1
               or redis.call('HEXISTS', kkey(user, 'devkeys'), a[i + 2]) == 1
            then
                return mx_error(403, 'M_FORBIDDEN', 'Key ID in use')
            end
        end
        for i = 3, #a - 2, 3 do
            local old = redis.call('HGET', keys[1], a[i] .. '_pk')
            if old and old ~= a[i + 2] then
                -- signatures of the old key, and by it, are void
                sigs_drop(user, old, 'ed25519:' .. old)
            end
            redis.call('HSET', keys[1], a[i], a[i + 1],
                       a[i] .. '_pk', a[i + 2])
        end
        keys_changed(user)
        return 'OK'
    end
}


-- mx_keys_sigs_get: what checking a user's signatures needs
--   KEYS[1]  mx:{<asker>}:xsign
--   ARGV     asker, then the other local users whose keys are signed
--   reply:   {{master, self_signing, user_signing} of the asker ('' for
--            none), {device_id, device keys, ...} of the asker's devices,
--            {user_id, master key or '', ...}}
redis.register_function{
    function_name = 'mx_keys_sigs_get',
    callback = function(keys, a)
        local xs = redis.call('HMGET', keys[1], 'master', 'self_signing',
                              'user_signing')
        local others = {}
        for i = 2, #a do
            others[#others + 1] = a[i]
            others[#others + 1] = redis.call('HGET', kkey(a[i], 'xsign'),
                                             'master') or ''
        end
        return { { xs[1] or '', xs[2] or '', xs[3] or '' },
                 redis.call('HGETALL', kkey(a[1], 'devkeys')), others }
    end,
    flags = { 'no-writes' }
}


-- mx_keys_sigs_put: store checked signatures made by a user
--   KEYS[1]  mx:{<asker>}:keysigs
--   ARGV     asker, then (target user, target key: a device ID or a
--            public key, signer's key ID, signature) for each
--   reply:   'OK'
-- Signatures of the asker's own keys are a change of the asker's device
-- list; those of other users' master keys are news for the asker alone
-- (mx:{<asker>}:sigpos): nobody else sees them.
redis.register_function{
    function_name = 'mx_keys_sigs_put',
    callback = function(keys, a)
        local asker = a[1]
        local own, others = false, {}
        for i = 2, #a - 3, 4 do
            redis.call('HSET', kkey(a[i], 'keysigs'),
                       a[i + 1] .. '\31' .. asker .. '\31' .. a[i + 2],
                       a[i + 3])
            if a[i] == asker then
                own = true
            else
                others[#others + 1] = a[i]
            end
        end
        if own then keys_changed(asker) end
        if #others > 0 then
            local pos = redis.call('INCR', 'mx:stream')
            for _, u in ipairs(others) do
                redis.call('ZADD', kkey(asker, 'sigpos'), pos, u)
            end
            redis.call('PUBLISH', 'mx:wake', '- ' .. asker)
        end
        return 'OK'
    end
}
