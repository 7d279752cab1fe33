
-- User-interactive authentication sessions and registration tokens.
--
--   mx:uia:<session>        hash: method, path, user, s:<stage> = '1' for
--                           each completed stage, regtoken; expires
--   mx:regtoken:<token>     hash: uses_allowed ('' = unlimited), pending,
--                           completed, expiry_time (ms, '' = never)

local function uia_error(status, errcode, message)
    return redis.error_reply('MX ' .. status .. ' ' .. errcode .. ' ' .. message)
end

local function split(s, sep)
    local out = {}
    for piece in string.gmatch(s, '([^' .. sep .. ']+)') do
        out[#out + 1] = piece
    end
    return out
end

local function uia_completed(key)
    local out = {}
    local all = redis.call('HGETALL', key)
    for i = 1, #all, 2 do
        if string.sub(all[i], 1, 2) == 's:' then
            out[#out + 1] = string.sub(all[i], 3)
        end
    end
    table.sort(out)
    return out
end


-- mx_uia_start: a new session
--   KEYS[1]  mx:uia:<session>
--   ARGV     method, path, user_id ('' when unauthenticated), ttl (ms)
--   reply:   'OK'
redis.register_function{
    function_name = 'mx_uia_start',
    callback = function(keys, a)
        redis.call('HSET', keys[1], 'method', a[1], 'path', a[2], 'user', a[3])
        redis.call('PEXPIRE', keys[1], a[4])
        return 'OK'
    end
}


-- mx_uia_stage: complete a stage of a session (or just look at it, with
-- stage ''), and finish the session when a flow is complete
--   KEYS[1]  mx:uia:<session>
--   ARGV     method, path, user_id (''), stage (''), flows as
--            "a,b|c" (stages of a flow by ',', flows by '|'),
--            registration token used ('')
--   reply:   {'done', regtoken|''} when a flow is complete (the session is
--            gone: it can be used once); else {'more', completed stages...}
--            MX 400 M_UNKNOWN for an unknown or expired session,
--            MX 403 M_FORBIDDEN when it was started for another request or
--            user, MX 400 M_UNRECOGNIZED for a stage out of order
redis.register_function{
    function_name = 'mx_uia_stage',
    callback = function(keys, a)
        local s = redis.call('HMGET', keys[1], 'method', 'path', 'user',
                             'regtoken')
        if not s[1] then
            return uia_error(400, 'M_UNKNOWN', 'Unknown session ID')
        end
        if s[1] ~= a[1] or s[2] ~= a[2] then
            return uia_error(403, 'M_FORBIDDEN', 'Requested operation has'
                             .. ' changed during the UI authentication session.')
        end
        if s[3] ~= a[3] then
            return uia_error(403, 'M_FORBIDDEN',
                             'This session belongs to another user.')
        end

        local done = {}
        for _, st in ipairs(uia_completed(keys[1])) do done[st] = true end

        local flows = {}
        for _, f in ipairs(split(a[5], '|')) do flows[#flows + 1] = split(f, ',') end

        -- a new stage must be the next one of some flow whose earlier
        -- stages are complete
        if a[4] ~= '' and not done[a[4]] then
            local ok = false
            for _, f in ipairs(flows) do
                for _, st in ipairs(f) do
                    if st == a[4] then ok = true break end
                    if not done[st] then break end
                end
                if ok then break end
            end
            if not ok then
                return uia_error(400, 'M_UNRECOGNIZED', 'Stage ' .. a[4]
                                 .. ' is not the next stage of any flow')
            end
            done[a[4]] = true
            redis.call('HSET', keys[1], 's:' .. a[4], '1')
            if a[6] ~= '' then
                redis.call('HSET', keys[1], 'regtoken', a[6])
                s[4] = a[6]
            end
        end

        for _, f in ipairs(flows) do
            local all = true
            for _, st in ipairs(f) do
                if not done[st] then all = false break end
            end
            if all then
                redis.call('DEL', keys[1])
                return { 'done', s[4] or '' }
            end
        end

        local out = { 'more' }
        for _, st in ipairs(uia_completed(keys[1])) do out[#out + 1] = st end
        return out
    end
}


local function regtoken_valid(t, now)
    local exp = tonumber(t[4] or '')
    if exp and exp <= now then return false end
    local allowed = tonumber(t[1] or '')
    if allowed then
        local used = (tonumber(t[2] or '0') or 0) + (tonumber(t[3] or '0') or 0)
        if used >= allowed then return false end
    end
    return true
end


-- mx_regtoken: check a registration token, and optionally take one use of
-- it ('reserve' when its stage completes, 'complete' when the account
-- exists)
--   KEYS[1]  mx:regtoken:<token>
--   ARGV     now, action ('check'|'reserve'|'complete')
--   reply:   1 valid (and done), 0 not valid
redis.register_function{
    function_name = 'mx_regtoken',
    callback = function(keys, a)
        if redis.call('EXISTS', keys[1]) == 0 then return 0 end
        local t = redis.call('HMGET', keys[1], 'uses_allowed', 'pending',
                             'completed', 'expiry_time')
        if a[2] == 'complete' then
            if (tonumber(t[2] or '0') or 0) > 0 then
                redis.call('HINCRBY', keys[1], 'pending', -1)
            end
            redis.call('HINCRBY', keys[1], 'completed', 1)
            return 1
        end
        if not regtoken_valid(t, tonumber(a[1])) then
            return 0
        end
        if a[2] == 'reserve' then
            redis.call('HINCRBY', keys[1], 'pending', 1)
        end
        return 1
    end
}


-- mx_regtoken_add: create (or reset) a registration token
--   KEYS[1]  mx:regtoken:<token>
--   ARGV     uses_allowed ('' for unlimited), expiry_time (ms, '' = never)
--   reply:   'OK'
redis.register_function{
    function_name = 'mx_regtoken_add',
    callback = function(keys, a)
        redis.call('DEL', keys[1])
        redis.call('HSET', keys[1], 'pending', 0, 'completed', 0)
        if a[1] ~= '' then redis.call('HSET', keys[1], 'uses_allowed', a[1]) end
        if a[2] ~= '' then redis.call('HSET', keys[1], 'expiry_time', a[2]) end
        return 'OK'
    end
}
