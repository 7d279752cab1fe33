
-- Inbound federation transactions (PUT /_matrix/federation/v1/send/{txnId},
-- ngx_matrix_module/ngx_matrix_fedsend.c).
--
--   mx:fedtxn:{<origin>}:<txn_id>  string: "\0<ms>" while the transaction
--                                  is being processed (since ms), then the
--                                  response sent (JSON); expires a day
--                                  after the response, two minutes after
--                                  the start
--
-- PDUs go to the room's input shard with their origin (mx_fed_submit),
-- EDUs are applied at once by mx_fed_edus with the functions the client
-- API uses (lua/ephemeral.lua, lua/keys.lua).  The rooms' server ACLs come
-- with mx_fed_room and mx_fed_acl (fed_acl of lua/rooms_fed.lua); the
-- module matches them (core/mx_acl).


-- mx_fedtxn_begin: a transaction arrives
--   KEYS[1]  mx:fedtxn:{<origin>}:<txn_id>
--   ARGV     now (ms), stale (ms: a start older than this is taken over,
--            its request gone)
--   reply:   {'done', response} seen and answered before; {'busy'} being
--            processed by another request; {'new'} this request's to do
redis.register_function{
    function_name = 'mx_fedtxn_begin',
    callback = function(keys, a)
        local now = tonumber(a[1])
        local v = redis.call('GET', keys[1])
        if v and string.sub(v, 1, 1) ~= '\0' then
            return { 'done', v }
        end
        if v and now - tonumber(string.sub(v, 2)) < tonumber(a[2]) then
            return { 'busy' }
        end
        redis.call('SET', keys[1], '\0' .. now, 'PX', 120000)
        return { 'new' }
    end
}


-- mx_fedtxn_end: the response of a transaction, kept for its retries
--   KEYS[1]  mx:fedtxn:{<origin>}:<txn_id>
--   ARGV     response ('': forget the transaction, to be done again),
--            lifetime (s)
--   reply:   'OK'
redis.register_function{
    function_name = 'mx_fedtxn_end',
    callback = function(keys, a)
        if a[1] == '' then
            redis.call('DEL', keys[1])
        else
            redis.call('SET', keys[1], a[1], 'EX', tonumber(a[2]))
        end
        return 'OK'
    end
}


-- mx_fed_room: what a transaction needs of a room before its PDUs go in
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, then event IDs (the PDUs' prev_events)
--   reply:   false for a room this server does not have; else {version,
--            {forward extremities}, {1 or 0 for each ID: stored (as the
--            roomserver counts prev_events: rejected ones too)}, the
--            room's m.room.server_acl PDU or ''}
redis.register_function{
    function_name = 'mx_fed_room',
    callback = function(keys, a)
        local version = redis.call('HGET', keys[1], 'version')
        if not version then
            return false
        end
        local room = a[1]
        local meta = 'mx:{' .. room .. '}:meta'
        local known = {}
        for i = 2, #a do
            known[#known + 1] = redis.call('HEXISTS', meta, a[i])
        end
        return { version, redis.call('SMEMBERS', 'mx:{' .. room .. '}:extrem'),
                 known, fed_acl(room) }
    end,
    flags = { 'no-writes' }
}


-- mx_fed_submit: another server's events onto the room's input shard, in
-- the order given (the roomserver checks them on receipt)
--   KEYS[1]  mx:input:<n>
--   ARGV     room_id, version, origin, reply, req, then event_id, pdu,
--            state for each event (state: '' or the origin's /state answer
--            at the event's missing prev event, {"pdus", "auth_chain"},
--            for an event over a gap that get_missing_events did not close)
--   reply:   the number of events appended
-- Every entry carries the reply address: each is answered on its own,
-- {"event_id"} once visible, or the refusal with "refused": its ID.
redis.register_function{
    function_name = 'mx_fed_submit',
    callback = function(keys, a)
        local meta = 'mx:{' .. a[1] .. '}:meta'
        local n = 0
        for i = 6, #a - 2, 3 do
            local fresh = redis.call('HEXISTS', meta, a[i]) == 0 and '1' or '0'
            if a[i + 2] == '' then
                redis.call('XADD', keys[1], '*', 'kind', 'event', 'room', a[1],
                           'event_id', a[i], 'event', a[i + 1], 'version', a[2],
                           'origin', a[3], 'reply', a[4], 'req', a[5],
                           'fresh', fresh)
            else
                redis.call('XADD', keys[1], '*', 'kind', 'event', 'room', a[1],
                           'event_id', a[i], 'event', a[i + 1], 'version', a[2],
                           'origin', a[3], 'reply', a[4], 'req', a[5],
                           'fresh', fresh, 'state', a[i + 2])
            end
            n = n + 1
        end
        return n
    end
}


-- the server of a user ID, or nil
local function user_server(user)
    if type(user) ~= 'string' then return nil end
    return string.match(user, '^@[^:]*:(.+)$')
end


local function edu_typing(origin, c, now)
    if type(c.room_id) ~= 'string' or user_server(c.user_id) ~= origin then
        return 'not a user of the origin'
    end
    local timeout = 0
    if c.typing == true then
        timeout = 30000
        if type(c.timeout) == 'number' and c.timeout > 0 then
            timeout = math.min(c.timeout, 30000)
        end
    end
    return typing_set(c.room_id, c.user_id, now, timeout) and 'not in the room'
end


local function edu_receipt(origin, c, now)
    local n = 0
    for room, types in pairs(c) do
        local rs = type(types) == 'table' and types['m.read']
        if type(room) == 'string' and type(rs) == 'table' then
            for user, r in pairs(rs) do
                if user_server(user) == origin and type(r) == 'table'
                   and type(r.event_ids) == 'table' then
                    local thread = ''
                    if type(r.data) == 'table'
                       and type(r.data.thread_id) == 'string' then
                        thread = r.data.thread_id
                    end
                    for _, id in ipairs(r.event_ids) do
                        if type(id) == 'string'
                           and not receipt_check(room, user, id) then
                            receipt_put(room, user, 'm.read', id, thread, now, true)
                            n = n + 1
                        end
                    end
                end
            end
        end
    end
    return n == 0 and 'no receipt taken'
end


local function edu_presence(origin, c, now)
    local n = 0
    if type(c.push) ~= 'table' then return 'no push' end
    for _, p in ipairs(c.push) do
        if type(p) == 'table' and user_server(p.user_id) == origin
           and type(p.presence) == 'string' then
            local ago = tonumber(p.last_active_ago) or 0
            local msg = type(p.status_msg) == 'string' and p.status_msg or '\0'
            if not presence_set({ p.user_id, p.presence, msg,
                                  tostring(now - ago), '1' }) then
                n = n + 1
            end
        end
    end
    return n == 0 and 'no presence taken'
end


-- a remote user's device list changed: the keys kept (or the device gone)
-- and the change recorded where local users' /sync looks for it
local function edu_devices(origin, c)
    if user_server(c.user_id) ~= origin or type(c.device_id) ~= 'string' then
        return 'not a user of the origin'
    end
    local dk = 'mx:{' .. c.user_id .. '}:devkeys'
    if c.deleted == true then
        redis.call('HDEL', dk, c.device_id)
    elseif type(c.keys) == 'table' then
        redis.call('HSET', dk, c.device_id, cjson.encode(c.keys))
    end
    keys_changed(c.user_id)
    return false
end


local function edu_to_device(origin, c, now, server)
    if user_server(c.sender) ~= origin or type(c.type) ~= 'string'
       or type(c.message_id) ~= 'string' or type(c.messages) ~= 'table' then
        return 'malformed, or not a user of the origin'
    end
    -- message_id: each message once, however often it comes
    local txn = 'mx:{' .. c.sender .. '}:todevice_txn:'
    if redis.call('HSETNX', txn, c.message_id, '1') == 0 then
        return 'seen before'
    end
    redis.call('EXPIRE', txn, 86400)
    local n = 0
    for user, devices in pairs(c.messages) do
        if user_server(user) == server and type(devices) == 'table' then
            for device, content in pairs(devices) do
                if type(device) == 'string' then
                    n = n + todevice_deliver(c.sender, c.type, user, device,
                                             content)
                end
            end
        end
    end
    return n == 0 and 'no local device'
end


local EDUS = {
    ['m.typing'] = edu_typing,
    ['m.receipt'] = edu_receipt,
    ['m.presence'] = edu_presence,
    ['m.device_list_update'] = edu_devices,
    ['m.direct_to_device'] = edu_to_device,
}


-- mx_fed_edus: the EDUs of a transaction, each applied as the client API
-- would, and only for users of the origin (a server speaks for its own
-- users); unknown types and malformed EDUs are ignored, as the spec says
--   KEYS[1]  mx:fedtxn:{<origin>}:<txn_id>
--   ARGV     origin, this server's name, now (ms), then edu_type, content
--            (JSON) for each EDU
--   reply:   for each EDU, '' when applied, else why it was ignored
redis.register_function{
    function_name = 'mx_fed_edus',
    callback = function(keys, a)
        local origin, server, now = a[1], a[2], tonumber(a[3])
        local out = {}
        for i = 4, #a - 1, 2 do
            local f = EDUS[a[i]]
            local ok, c = pcall(cjson.decode, a[i + 1])
            local why
            if not f then
                why = 'unknown EDU type'
            elseif not ok or type(c) ~= 'table' then
                why = 'content is not an object'
            else
                why = f(origin, c, now, server) or ''
            end
            out[#out + 1] = why
        end
        return out
    end
}
