
-- Serving other servers: the reads behind the room endpoints of the
-- federation API, one call per request (ngx_matrix_fedrooms.c).
--
-- It reads what lua/rooms.lua and lua/sync.lua keep (and sorts after
-- rooms.lua, whose helpers it uses: rkey, sg_state, event_visible):
--
--   mx:{<room_id>}:pdu, :meta, :sg:<n>, :state, :members, :redactions
--   mx:{<room_id>}:spos, :mhist:<user>, :hvhist, :mpos  (the syncer's)
--   mx:eventroom                 hash: event_id -> room_id (mx_room_store)
--
-- Who may see what.  A server may see an event when one of its users may,
-- by the history visibility rules of the client API (event_visible: the
-- visibility and the user's membership at the event's stream position,
-- world_readable for anyone); its users are those the room has ever had a
-- membership for (mpos).  An event with no stream position yet (the
-- syncer has not placed it, or an outlier) is visible while the server has
-- a joined user or the room is world_readable.  A room endpoint answers a
-- server that has a joined user, or that may see the event it asks about.
--
-- The room functions reply {acl, status, ...}: acl the PDU of the room's
-- m.room.server_acl ('' for none), which the module checks first (the
-- matcher is core/mx_acl.c); status 0 and the data, or an HTTP status,
-- errcode and message.  So a denied server hears 403 whatever else.

-- the server name of a user ID, or nil
local function fed_server_of(user)
    return string.match(user, '^@[^:]*:(.+)$')
end

-- the room's m.room.server_acl PDU, or ''
local function fed_acl(room)
    local id = redis.call('HGET', rkey(room, 'state'),
                          'm.room.server_acl' .. SEP)
    return id and (redis.call('HGET', rkey(room, 'pdu'), id) or '') or ''
end

local function fed_error(acl, status, errcode, message)
    return { acl, status, errcode, message }
end

-- a decoded PDU, or nil
local function fed_decode(pdu)
    if not pdu then return nil end
    local ok, ev = pcall(cjson.decode, pdu)
    if ok and type(ev) == 'table' then return ev end
    return nil
end

-- the event IDs of a list of prev_events or auth_events: v1 and v2 give
-- [id, hashes] pairs, later versions the IDs
local function fed_refs(list)
    local out = {}
    if type(list) ~= 'table' then return out end
    for _, r in ipairs(list) do
        if type(r) == 'table' then r = r[1] end
        if type(r) == 'string' then out[#out + 1] = r end
    end
    return out
end

-- what the room knows of a server: its users ever in the room (the
-- joined first), and whether one of them is joined now
local function fed_server_users(room, server)
    local members = rkey(room, 'members')
    local joined, others = {}, {}
    for _, u in ipairs(redis.call('ZRANGE', rkey(room, 'mpos'), 0, -1)) do
        if fed_server_of(u) == server then
            local m = redis.call('HGET', members, u)
            if m == 'join' then
                joined[#joined + 1] = { u, m }
            else
                others[#others + 1] = { u, m }
            end
        end
    end
    local is_joined = #joined > 0
    if not is_joined then
        -- the syncer may not have placed a join the roomserver stored
        for _, u in ipairs(redis.call('HKEYS', members)) do
            if fed_server_of(u) == server
               and redis.call('HGET', members, u) == 'join' then
                is_joined = true
                break
            end
        end
    end
    for _, o in ipairs(others) do joined[#joined + 1] = o end
    return joined, is_joined
end

-- may the server see the event?  who: fed_server_users's answer
local function fed_visible(room, who, id, pdu)
    local pos = redis.call('HGET', rkey(room, 'spos'), id)
    if not pos then
        return who.joined or room_readable(room, '')
    end
    pos = tonumber(pos)
    if #who.users == 0 then
        -- nobody of that server: only world_readable events
        return event_visible(room, '', pos, pdu, nil)
    end
    for _, u in ipairs(who.users) do
        if event_visible(room, u[1], pos, pdu, u[2]) then return true end
    end
    return false
end

local function fed_who(room, server)
    local users, joined = fed_server_users(room, server)
    return { users = users, joined = joined }
end

-- the "<pos> <sg> <depth> <flags>" of an event: sg, depth, flags
local function fed_meta(room, id)
    local m = redis.call('HGET', rkey(room, 'meta'), id)
    if not m then return nil end
    local _, sg, depth, flags = string.match(m, '^(%d+) (%d+) (%-?%d+) (%S+)')
    return sg, tonumber(depth or '0'), flags or '-'
end

-- the state before an event, as a map key -> event ID; nil for an
-- outlier (no state known).  The group after a non-state (or rejected)
-- event is the state before it; a state event's group holds itself, so
-- the state before it is the group after its prev events when they share
-- one (the roomserver built on that group), else that group without the
-- event, its key as the deepest prev event had it.
local function fed_state_before(room, id, ev, sg, flags)
    if string.find(flags, 'o', 1, true) then return nil end
    if type(ev.state_key) ~= 'string' or string.find(flags, 'r', 1, true) then
        return sg_state(room, sg) or {}
    end
    local prevs = fed_refs(ev.prev_events)
    local psg, same, best, bestd = nil, true, nil, nil
    for _, p in ipairs(prevs) do
        local s, d = fed_meta(room, p)
        if not s then
            same = false
        else
            if psg and psg ~= s then same = false end
            psg = psg or s
            if not bestd or d > bestd then best, bestd = s, d end
        end
    end
    if #prevs == 0 then return {} end
    if same and psg then return sg_state(room, psg) or {} end
    local st = sg_state(room, sg) or {}
    local key = tostring(ev.type) .. SEP .. ev.state_key
    st[key] = nil
    if best then
        local bst = sg_state(room, best) or {}
        st[key] = bst[key]
    end
    return st
end

-- the auth chain of some events: their auth events and theirs, recursively
-- (the events themselves only when another's chain reaches them), sorted
-- by depth then ID; a list of {id, pdu}
local function fed_auth_chain(room, evs)
    local pk = rkey(room, 'pdu')
    local seen, out, queue = {}, {}, {}
    for _, ev in ipairs(evs) do
        for _, a in ipairs(fed_refs(ev.auth_events)) do
            queue[#queue + 1] = a
        end
    end
    local i = 1
    while i <= #queue do
        local a = queue[i]
        i = i + 1
        if not seen[a] then
            seen[a] = true
            local pdu = redis.call('HGET', pk, a)
            local ev = fed_decode(pdu)
            if ev then
                out[#out + 1] = { a, pdu, tonumber(ev.depth) or 0 }
                for _, b in ipairs(fed_refs(ev.auth_events)) do
                    if not seen[b] then queue[#queue + 1] = b end
                end
            end
        end
    end
    table.sort(out, function(x, y)
        if x[3] ~= y[3] then return x[3] < y[3] end
        return x[1] < y[1]
    end)
    return out
end

-- '1' when an event is served redacted: redacted in the room, or hidden
-- from the server (its place in the graph stays known)
local function fed_redact_flag(room, id, visible)
    if not visible then return '1' end
    return redis.call('HEXISTS', rkey(room, 'redactions'), id) == 1
           and '1' or '0'
end

-- the first checks of every room function: the room, its ACL, the server
local function fed_room(room, server)
    if redis.call('HEXISTS', rkey(room, 'room'), 'version') == 0 then
        return nil, fed_error('', 404, 'M_NOT_FOUND', 'Unknown room')
    end
    return fed_acl(room), nil, fed_who(room, server)
end

-- mx_fed_acl: the rooms' versions and server ACLs, for the endpoints
-- that check the ACL before anything else (make_*, send_*, invite, the
-- EDUs of /send)
--   KEYS     mx:{<room_id>}:room for each room
--   ARGV     the room IDs, in the same order
--   reply:   for each room {version or '' (not a room of this server),
--            m.room.server_acl PDU or ''}
redis.register_function{
    function_name = 'mx_fed_acl',
    callback = function(keys, a)
        local out = {}
        for i, room in ipairs(a) do
            local v = redis.call('HGET', keys[i], 'version')
            out[i] = { v or '', v and fed_acl(room) or '' }
        end
        return out
    end,
    flags = { 'no-writes' }
}

local function fed_split(s)
    local out = {}
    for id in string.gmatch(s, '[^\n]+') do out[#out + 1] = id end
    return out
end


-- mx_fed_state: the state before an event and its auth chain
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, origin, event_id, 'ids' or 'pdus'
--   reply:   {acl, 0, version, {state}, {auth chain}}: IDs, or (id, pdu,
--            redact '0'/'1') triples; the state sorted by (type,
--            state_key), the chain by depth; or {acl, status, errcode,
--            message}
redis.register_function{
    function_name = 'mx_fed_state',
    callback = function(keys, a)
        local room, id = a[1], a[3]
        local acl, err, who = fed_room(room, a[2])
        if err then return err end
        local pdu = redis.call('HGET', rkey(room, 'pdu'), id)
        local sg, _, flags = fed_meta(room, id)
        local ev = fed_decode(pdu)
        if not ev or not sg then
            return fed_error(acl, 404, 'M_NOT_FOUND', 'Unknown event')
        end
        if not who.joined and not fed_visible(room, who, id, pdu) then
            return fed_error(acl, 403, 'M_FORBIDDEN',
                             'Your server may not see this event')
        end
        local st = fed_state_before(room, id, ev, sg, flags)
        if not st then
            return fed_error(acl, 404, 'M_NOT_FOUND',
                             'The state at this event is not known')
        end
        local skeys = {}
        for k in pairs(st) do skeys[#skeys + 1] = k end
        table.sort(skeys)
        local pk = rkey(room, 'pdu')
        local state, evs = {}, {}
        for _, k in ipairs(skeys) do
            local sid = st[k]
            local spdu = redis.call('HGET', pk, sid)
            local sev = fed_decode(spdu)
            if sev then
                evs[#evs + 1] = sev
                if a[4] == 'ids' then
                    state[#state + 1] = sid
                else
                    state[#state + 1] = sid
                    state[#state + 1] = spdu
                    state[#state + 1] = fed_redact_flag(room, sid, true)
                end
            end
        end
        local chain = {}
        for _, c in ipairs(fed_auth_chain(room, evs)) do
            chain[#chain + 1] = c[1]
            if a[4] ~= 'ids' then
                chain[#chain + 1] = c[2]
                chain[#chain + 1] = fed_redact_flag(room, c[1], true)
            end
        end
        return { acl, 0, redis.call('HGET', keys[1], 'version'), state, chain }
    end,
    flags = { 'no-writes' }
}


-- mx_fed_event_auth: the auth chain of an event
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, origin, event_id
--   reply:   {acl, 0, version, {(id, pdu, redact)...}} by depth; or an error
redis.register_function{
    function_name = 'mx_fed_event_auth',
    callback = function(keys, a)
        local room, id = a[1], a[3]
        local acl, err, who = fed_room(room, a[2])
        if err then return err end
        local pdu = redis.call('HGET', rkey(room, 'pdu'), id)
        local ev = fed_decode(pdu)
        if not ev then
            return fed_error(acl, 404, 'M_NOT_FOUND', 'Unknown event')
        end
        if not who.joined and not fed_visible(room, who, id, pdu) then
            return fed_error(acl, 403, 'M_FORBIDDEN',
                             'Your server may not see this event')
        end
        local chain = {}
        for _, c in ipairs(fed_auth_chain(room, { ev })) do
            chain[#chain + 1] = c[1]
            chain[#chain + 1] = c[2]
            chain[#chain + 1] = fed_redact_flag(room, c[1], true)
        end
        return { acl, 0, redis.call('HGET', keys[1], 'version'), chain }
    end,
    flags = { 'no-writes' }
}


-- mx_fed_event: one event, by ID alone
--   KEYS[1]  mx:eventroom
--   ARGV     event_id, origin
--   reply:   {acl, 0, version, room_id, pdu, redact}; or an error: 404
--            for an event unknown or rejected, 403 when the server may
--            not see it
redis.register_function{
    function_name = 'mx_fed_event',
    callback = function(keys, a)
        local id = a[1]
        local room = redis.call('HGET', keys[1], id)
        if not room then
            return fed_error('', 404, 'M_NOT_FOUND', 'Unknown event')
        end
        local acl, err, who = fed_room(room, a[2])
        if err then return err end
        local pdu = redis.call('HGET', rkey(room, 'pdu'), id)
        local sg, _, flags = fed_meta(room, id)
        if not pdu or not sg or string.find(flags, 'r', 1, true) then
            return fed_error(acl, 404, 'M_NOT_FOUND', 'Unknown event')
        end
        if not fed_visible(room, who, id, pdu) then
            return fed_error(acl, 403, 'M_FORBIDDEN',
                             'Your server may not see this event')
        end
        return { acl, 0, redis.call('HGET', rkey(room, 'room'), 'version'),
                 room, pdu, fed_redact_flag(room, id, true) }
    end,
    flags = { 'no-writes' }
}


-- the events of a walk, for the reply: rejected ones are left out (the
-- walk goes through them), hidden ones redacted
local function fed_walk_out(room, who, list, out)
    for _, e in ipairs(list) do
        out[#out + 1] = e.id
        out[#out + 1] = e.pdu
        out[#out + 1] = fed_redact_flag(room, e.id,
                                        fed_visible(room, who, e.id, e.pdu))
    end
    return out
end

-- a stored event for a walk: {id, pdu, ev, depth, rejected}, or nil
local function fed_walk_event(room, id)
    local pdu = redis.call('HGET', rkey(room, 'pdu'), id)
    local ev = fed_decode(pdu)
    if not ev then return nil end
    local _, _, flags = fed_meta(room, id)
    return { id = id, pdu = pdu, ev = ev, depth = tonumber(ev.depth) or 0,
             rejected = flags ~= nil and string.find(flags, 'r', 1, true) }
end


-- a walk's first events: those of ids stored here and not in seen (which
-- they join); nil and the error when none of ids is stored (404) or none
-- may be seen by the asking server (403)
local function fed_walk_start(room, who, acl, ids, seen)
    local front, known, visible = {}, false, who.joined
    for _, id in ipairs(ids) do
        local e = fed_walk_event(room, id)
        if e then
            known = true
            visible = visible or fed_visible(room, who, id, e.pdu)
            if not seen[id] then
                seen[id] = true
                front[#front + 1] = e
            end
        end
    end
    if not known then
        return nil, fed_error(acl, 404, 'M_NOT_FOUND', 'Unknown events')
    end
    if not visible then
        return nil, fed_error(acl, 403, 'M_FORBIDDEN',
                              'Your server may not see these events')
    end
    return front
end


-- mx_fed_backfill: the given events and those before them, deepest first:
-- the walk always takes the deepest event not taken yet (ties by ID) and
-- adds its prev_events, until limit events are taken
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, origin, limit, event IDs ("\n"-separated)
--   reply:   {acl, 0, version, {(id, pdu, redact)...}}; or an error (404
--            when none of the events is known)
redis.register_function{
    function_name = 'mx_fed_backfill',
    callback = function(keys, a)
        local room, limit = a[1], tonumber(a[3])
        local acl, err, who = fed_room(room, a[2])
        if err then return err end
        local seen = {}
        local front, ferr = fed_walk_start(room, who, acl, fed_split(a[4]),
                                           seen)
        if not front then return ferr end
        local taken = {}
        while #front > 0 and #taken < limit do
            local best = 1
            for i = 2, #front do
                local x, y = front[i], front[best]
                if x.depth > y.depth
                   or (x.depth == y.depth and x.id < y.id) then
                    best = i
                end
            end
            local e = table.remove(front, best)
            if not e.rejected then taken[#taken + 1] = e end
            for _, p in ipairs(fed_refs(e.ev.prev_events)) do
                if not seen[p] then
                    seen[p] = true
                    local pe = fed_walk_event(room, p)
                    if pe then front[#front + 1] = pe end
                end
            end
        end
        return { acl, 0, redis.call('HGET', keys[1], 'version'),
                 fed_walk_out(room, who, taken, {}) }
    end,
    flags = { 'no-writes' }
}


-- mx_fed_missing_events: a breadth-first walk of the prev_events of
-- latest_events that never enters earliest_events (nor goes below
-- min_depth), until limit events; the latest events themselves are not
-- in the answer, which is sorted oldest first (by depth, then ID)
--   KEYS[1]  mx:{<room_id>}:room
--   ARGV     room_id, origin, limit, min_depth, earliest ("\n"-separated),
--            latest ("\n"-separated)
--   reply:   {acl, 0, version, {(id, pdu, redact)...}}; or an error (404
--            when none of the latest events is known)
redis.register_function{
    function_name = 'mx_fed_missing_events',
    callback = function(keys, a)
        local room, limit, min_depth = a[1], tonumber(a[3]), tonumber(a[4])
        local acl, err, who = fed_room(room, a[2])
        if err then return err end
        local seen = {}
        for _, id in ipairs(fed_split(a[5])) do seen[id] = true end
        local front, ferr = fed_walk_start(room, who, acl, fed_split(a[6]),
                                           seen)
        if not front then return ferr end
        local found = {}
        while #front > 0 and #found < limit do
            table.sort(front, function(x, y) return x.id < y.id end)
            local next_front = {}
            for _, e in ipairs(front) do
                for _, p in ipairs(fed_refs(e.ev.prev_events)) do
                    if #found >= limit then break end
                    if not seen[p] then
                        seen[p] = true
                        local pe = fed_walk_event(room, p)
                        if pe and pe.depth >= min_depth then
                            next_front[#next_front + 1] = pe
                            if not pe.rejected then found[#found + 1] = pe end
                        end
                    end
                end
            end
            front = next_front
        end
        table.sort(found, function(x, y)
            if x.depth ~= y.depth then return x.depth < y.depth end
            return x.id < y.id
        end)
        return { acl, 0, redis.call('HGET', keys[1], 'version'),
                 fed_walk_out(room, who, found, {}) }
    end,
    flags = { 'no-writes' }
}
