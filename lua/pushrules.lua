
-- Push rules of a user: their own rules, and their changes to any rule's
-- "enabled" and "actions" (server-default rules included).  The default
-- rules themselves are not stored: core/mx_pushrules.c makes them.
--
--   mx:{<user_id>}:pushrules          hash:
--       rule:<kind>/<rule_id>      a rule of the user's, canonical JSON
--                                  (rule_id, default, enabled, actions,
--                                  conditions or pattern), as PUT made it
--       enabled:<kind>/<rule_id>   'true' or 'false': changed "enabled"
--       actions:<kind>/<rule_id>   JSON array: changed "actions"
--   mx:{<user_id>}:pushrules:<kind>   list of the IDs of the user's rules
--                                     of that kind, most important first
--
-- <kind> is override, content, room, sender or underride; rule IDs never
-- hold '/'.  The module checks kinds, IDs and bodies before calling.

local PUSH_KINDS = { 'override', 'content', 'room', 'sender', 'underride' }

-- every change is logged for the syncer, which caches rules to evaluate
-- them (lua/notify.lua): mx:pushrules:changed, user by the change's number
local function pushrules_changed(h)
    local user = string.match(h, '^mx:{(.*)}:pushrules$')
    if user then
        redis.call('ZADD', 'mx:pushrules:changed',
                   redis.call('INCR', 'mx:pushrules:ver'), user)
    end
end

-- mx_pushrules_get: everything stored about a user's push rules
--   KEYS[1]  mx:{<user_id>}:pushrules
--   reply:   { override, content, room, sender, underride, changes }: one
--            array per kind of the user's rules (JSON) most important
--            first, then a flat array of field, value of the
--            enabled:... and actions:... fields
local function pushrules_get(h)
    local reply = {}
    for i, kind in ipairs(PUSH_KINDS) do
        local rules = {}
        for _, id in ipairs(redis.call('LRANGE', h .. ':' .. kind, 0, -1)) do
            local r = redis.call('HGET', h, 'rule:' .. kind .. '/' .. id)
            if r then rules[#rules + 1] = r end
        end
        reply[i] = rules
    end
    local changes = {}
    local all = redis.call('HGETALL', h)
    for i = 1, #all, 2 do
        local f = all[i]
        if f:sub(1, 8) == 'enabled:' or f:sub(1, 8) == 'actions:' then
            changes[#changes + 1] = f
            changes[#changes + 1] = all[i + 1]
        end
    end
    reply[#PUSH_KINDS + 1] = changes
    return reply
end

redis.register_function{
    function_name = 'mx_pushrules_get',
    callback = function(keys) return pushrules_get(keys[1]) end,
    flags = { 'no-writes' }
}


-- mx_pushrules_get_many: mx_pushrules_get of several users at once (the
-- syncer, for the members of a room whose rules it has not cached)
--   KEYS     mx:{<user_id>}:pushrules, ...
--   ARGV     none
--   reply:   one mx_pushrules_get reply per key
redis.register_function{
    function_name = 'mx_pushrules_get_many',
    callback = function(keys)
        local out = {}
        for i, k in ipairs(keys) do out[i] = pushrules_get(k) end
        return out
    end,
    flags = { 'no-writes' }
}

-- mx_pushrule_put: create or replace a rule of the user's
--   KEYS[1]  mx:{<user_id>}:pushrules
--   ARGV[1]  kind
--   ARGV[2]  rule ID
--   ARGV[3]  the rule, canonical JSON
--   ARGV[4]  before: the ID of a rule of the user's of the same kind this
--            one goes just above, or ''
--   ARGV[5]  after: ... just below, or '' (before wins when both are given)
--   reply:   'OK', or MX 400 M_UNKNOWN when before/after names no rule
--
-- A new rule is enabled and, without before/after, the most important of
-- its kind; a replaced one keeps its place (unless moved) and whether it is
-- enabled, and takes the new actions.
redis.register_function{
    function_name = 'mx_pushrule_put',
    callback = function(keys, args)
        local h, kind, id = keys[1], args[1], args[2]
        local list = h .. ':' .. kind
        local name = kind .. '/' .. id
        local exists = redis.call('HEXISTS', h, 'rule:' .. name) == 1
        local pivot, where = nil, nil

        if args[4] ~= '' then
            pivot, where = args[4], 'BEFORE'
        elseif args[5] ~= '' then
            pivot, where = args[5], 'AFTER'
        end

        if pivot and exists and pivot == id then
            pivot = nil
        end

        if pivot then
            if not redis.call('LPOS', list, pivot) then
                return mx_error(400, 'M_UNKNOWN',
                                       'before/after rule not found: ' .. pivot)
            end
            if exists then redis.call('LREM', list, 0, id) end
            redis.call('LINSERT', list, where, pivot, id)
        elseif not exists then
            redis.call('LPUSH', list, id)
        end

        redis.call('HSET', h, 'rule:' .. name, args[3])
        redis.call('HDEL', h, 'actions:' .. name)
        if not exists then redis.call('HDEL', h, 'enabled:' .. name) end
        pushrules_changed(h)
        return 'OK'
    end
}

-- mx_pushrule_delete: delete a rule of the user's
--   KEYS[1]  mx:{<user_id>}:pushrules
--   ARGV[1]  kind
--   ARGV[2]  rule ID
--   reply:   'OK', or MX 404 M_NOT_FOUND
redis.register_function{
    function_name = 'mx_pushrule_delete',
    callback = function(keys, args)
        local h, kind, id = keys[1], args[1], args[2]
        local name = kind .. '/' .. id
        if redis.call('HDEL', h, 'rule:' .. name) == 0 then
            return mx_error(404, 'M_NOT_FOUND',
                                   'The push rule was not found.')
        end
        redis.call('HDEL', h, 'enabled:' .. name, 'actions:' .. name)
        redis.call('LREM', h .. ':' .. kind, 0, id)
        pushrules_changed(h)
        return 'OK'
    end
}

-- mx_pushrule_set: change the "enabled" or "actions" of a rule
--   KEYS[1]  mx:{<user_id>}:pushrules
--   ARGV[1]  kind
--   ARGV[2]  rule ID
--   ARGV[3]  'enabled' or 'actions'
--   ARGV[4]  'true'/'false', or the actions as JSON
--   ARGV[5]  '1': a server-default rule (the module knows those), '0': a
--            rule of the user's, which must exist
--   reply:   'OK', or MX 404 M_NOT_FOUND
redis.register_function{
    function_name = 'mx_pushrule_set',
    callback = function(keys, args)
        local h, name = keys[1], args[1] .. '/' .. args[2]
        if args[5] ~= '1' and redis.call('HEXISTS', h, 'rule:' .. name) == 0 then
            return mx_error(404, 'M_NOT_FOUND',
                                   'The push rule was not found.')
        end
        redis.call('HSET', h, args[3] .. ':' .. name, args[4])
        pushrules_changed(h)
        return 'OK'
    end
}
