// The Lua scripts of the Redis broker. Each runs atomically in Redis (EVALSHA through ioredis's
// defineCommand, which falls back to EVAL on NOSCRIPT, e.g. after a Redis restart emptied the
// script cache). Key layout (P = the key prefix, `parley:` by default):
//
//   P room:<room>            hash: member id -> "<node>\n<epoch>\n<order>\n<name>"
//                            node: the node that owns the member's session; epoch: this
//                            membership (a takeover gets a new one, so an old owner's leave
//                            removes nothing); order: the first join's sequence (join order)
//   P seq                    counter for epochs and orders
//   P node:<node>:alive      a node's heartbeat (PX ttl)         P nodes   set of live nodes
//   P node:<node>:members    "<room>\n<id>" the node owns        P dead    zset: dead node -> reap at (ms)
//   P held:<room>:<id>       list of "<from>\n<frame>" held for a member whose node did not take them
//   P heldbytes:<room>:<id>  their bytes
//   P revoked:<key>          revocations (SET NX PX)
//   P departed:<room>        ids that left while Redis was away from their node (short expiry):
//                            nodes that register again later tell their members `peer-left`
//   channel P node:<node>    messages to a node (node-channel.ts)
//
// Rooms, ids and names match NAME_PATTERN / ID_PATTERN (no newline), so "\n" separates fields.
// Some scripts build keys from the prefix rather than take them as KEYS (one Redis, not Redis
// Cluster: a cluster would need every key of a script in one hash slot).

/** One script: how many of its arguments are keys, and its Lua text. */
export interface ScriptDefinition {
  readonly numberOfKeys: number;
  readonly lua: string;
}

const PARSE_MEMBER = `
local function parse(v)
  local node, epoch, order, name = string.match(v, '^([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n(.*)$')
  return node, epoch, order, name
end
`;

/**
 * Join (KEYS: room hash, seq, held list, held bytes, this node's members; ARGV: id, name, node,
 * maxPeers, takeover "1"/"0", prefix, room). Checks, in the in-memory broker's order, id taken
 * (unless a takeover under the same name), name taken, room full; then inserts. Answers
 * {"ok", takenOver 0/1, oldNodeNotified (subscribers that got the 'taken' notice), epoch,
 * order, peerCount, id1, name1, ..., held entries...} or {reason}.
 */
export const JOIN: ScriptDefinition = {
  numberOfKeys: 5,
  lua: `${PARSE_MEMBER}
local roomKey, seqKey, heldKey, bytesKey, mineKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, name, node, maxPeers, takeover, prefix, room = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7]
local all = redis.call('HGETALL', roomKey)
local peers = {}
local current = nil
local nameTaken = false
for i = 1, #all, 2 do
  local n, e, o, nm = parse(all[i + 1])
  if all[i] == id then
    current = { n, e, o, nm }
  else
    if nm == name then nameTaken = true end
    peers[#peers + 1] = { tonumber(o), all[i], nm }
  end
end
local takenOver = 0
local notified = 0
local order
if current ~= nil then
  if takeover ~= '1' or current[4] ~= name then return { 'id-taken' } end
  takenOver = 1
  order = current[3]
else
  if nameTaken then return { 'name-taken' } end
  if #peers >= maxPeers then return { 'room-full' } end
end
local epoch = tostring(redis.call('INCR', seqKey))
if order == nil then order = epoch end
redis.call('HSET', roomKey, id, node .. '\\n' .. epoch .. '\\n' .. order .. '\\n' .. name)
local member = room .. '\\n' .. id
redis.call('SADD', mineKey, member)
if current ~= nil and current[1] ~= node then
  redis.call('SREM', prefix .. 'node:' .. current[1] .. ':members', member)
  notified = redis.call('PUBLISH', prefix .. 'node:' .. current[1], 't\\n' .. room .. '\\n' .. id .. '\\n' .. node .. '\\n')
end
local held = redis.call('LRANGE', heldKey, 0, -1)
redis.call('DEL', heldKey, bytesKey)
table.sort(peers, function(a, b) return a[1] < b[1] end)
local out = { 'ok', takenOver, notified, epoch, order, #peers }
for _, p in ipairs(peers) do
  out[#out + 1] = p[2]
  out[#out + 1] = p[3]
end
for _, h in ipairs(held) do out[#out + 1] = h end
return out
`,
};

/**
 * Remove a member (KEYS: room hash, held list, held bytes, the owner's members set, seq; ARGV: id,
 * node, epoch or "" for any, room): a leave (this node, its membership's epoch) or the reaping of
 * a dead node's member (that node, any epoch). Removes it only if that node still owns it (not
 * taken over since). Answers {1, removal seq, held entries...} when removed (their senders are
 * told; the `peer-left` goes only to memberships older than the removal), {0} otherwise.
 */
export const REMOVE_MEMBER: ScriptDefinition = {
  numberOfKeys: 5,
  lua: `${PARSE_MEMBER}
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return { 0 } end
local n, e = parse(v)
if n ~= ARGV[2] or (ARGV[3] ~= '' and e ~= ARGV[3]) then return { 0 } end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[4] .. '\\n' .. ARGV[1])
local held = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2], KEYS[3])
local out = { 1, redis.call('INCR', KEYS[5]) }
for _, h in ipairs(held) do out[#out + 1] = h end
return out
`,
};

/**
 * Publish a batch of frames, in order (no KEYS: the keys are built here from the prefix; ARGV:
 * prefix, max held frames, max held bytes, held ttl ms, then per frame: room, to, from or "",
 * frame). Each frame goes, as a `deliver` message (node-channel.ts), to the node that owns `to`;
 * when no subscriber got it (that node is dead or cut off), it is held for `to`, bounded.
 * Answers per frame 0 unknown member, 1 published, 2 not held (full), 3 held. One script call
 * carries every frame relayed in one turn of the event loop: far fewer commands than frames
 * under load, and four arguments a frame.
 */
export const PUBLISH: ScriptDefinition = {
  numberOfKeys: 0,
  lua: `
local prefix, maxFrames, maxBytes, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local out = {}
for a = 5, #ARGV, 4 do
  local room, to, from, frame = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local v = redis.call('HGET', prefix .. 'room:' .. room, to)
  local result = 0
  if v then
    local node = string.match(v, '^([^\\n]*)')
    local message = 'd\\n' .. room .. '\\n' .. to .. '\\n' .. from .. '\\n' .. frame
    if redis.call('PUBLISH', prefix .. 'node:' .. node, message) > 0 then
      result = 1
    else
      local heldKey = prefix .. 'held:' .. room .. ':' .. to
      local bytesKey = prefix .. 'heldbytes:' .. room .. ':' .. to
      local count = redis.call('LLEN', heldKey)
      local bytes = tonumber(redis.call('GET', bytesKey) or '0')
      if count >= maxFrames or bytes + #frame > maxBytes then
        result = 2
      else
        redis.call('RPUSH', heldKey, from .. '\\n' .. frame)
        redis.call('INCRBY', bytesKey, #frame)
        redis.call('PEXPIRE', heldKey, ttl)
        redis.call('PEXPIRE', bytesKey, ttl)
        result = 3
      end
    end
  end
  out[#out + 1] = result
end
return out
`,
};

/**
 * Broadcast (KEYS: room hash, departed list; ARGV: message, prefix, departed id or "", departed
 * ttl ms): the message once to each node that owns a member of the room. With a departed id (a
 * `peer-left` for a member whose leave could not reach Redis), nothing if that id is a member
 * again (it resumed elsewhere); otherwise it is also recorded in the departed list, for the nodes
 * that register again after this. Answers how many nodes' channels had a subscriber, -1 when
 * nothing was sent.
 */
export const BROADCAST: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `
if ARGV[3] ~= '' then
  if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 1 then return -1 end
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
local seen = {}
local reached = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
  local node = string.match(v, '^([^\\n]*)')
  if not seen[node] then
    seen[node] = true
    reached = reached + redis.call('PUBLISH', ARGV[2] .. 'node:' .. node, ARGV[1])
  end
end
return reached
`,
};

/**
 * Heartbeat (KEYS: alive key, nodes set, dead zset; ARGV: node, ttl ms). Renews the node's
 * heartbeat; answers 1 when the node was not in the live set (Redis lost it, or another node
 * found it dead): the node then registers its members again.
 */
export const HEARTBEAT: ScriptDefinition = {
  numberOfKeys: 3,
  lua: `
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('SADD', KEYS[2], ARGV[1])
`,
};

/**
 * Find dead nodes (KEYS: nodes set, dead zset; ARGV: prefix, grace ms). A live-set node whose
 * heartbeat expired moves to the dead zset, to be reaped `grace` ms later (Redis's clock); dead
 * nodes whose time has come are taken out of the zset and answered: the caller, alone, reaps them.
 */
export const FIND_DEAD: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'node:' .. n .. ':alive') == 0 then
    redis.call('SREM', KEYS[1], n)
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), n)
  end
end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, n in ipairs(due) do redis.call('ZREM', KEYS[2], n) end
return due
`,
};

/**
 * Register again (KEYS: this node's members, seq; ARGV: node, prefix, then per member room, id,
 * name, epoch, order), after Redis came back (maybe empty) or found this node dead: every local
 * member is written back (forced: no cap check) unless another node owns it now ("taken", room,
 * id, owner); members the set still lists but that this node no longer has are removed ("gone",
 * room, id: a leave that failed while Redis was away); frames held in Redis for a kept member
 * are taken ("held", room, id, count, entries...); ids that left a room of a kept member while
 * Redis was away from their node, and are no member now, are answered ("departed", room, id).
 * The seq counter is raised past every order.
 */
export const REREGISTER: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `${PARSE_MEMBER}
local node, prefix = ARGV[1], ARGV[2]
local keep = {}
local rooms = {}
local out = {}
local maxSeq = 0
local i = 3
while i <= #ARGV do
  local room, id, name, epoch, order = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local rk = prefix .. 'room:' .. room
  local v = redis.call('HGET', rk, id)
  local owner = v and parse(v)
  if v and owner ~= node then
    out[#out + 1] = 'taken'; out[#out + 1] = room; out[#out + 1] = id; out[#out + 1] = owner
  else
    redis.call('HSET', rk, id, node .. '\\n' .. epoch .. '\\n' .. order .. '\\n' .. name)
    keep[room .. '\\n' .. id] = true
    rooms[room] = true
    maxSeq = math.max(maxSeq, tonumber(epoch), tonumber(order))
    local hk = prefix .. 'held:' .. room .. ':' .. id
    local held = redis.call('LRANGE', hk, 0, -1)
    if #held > 0 then
      redis.call('DEL', hk, prefix .. 'heldbytes:' .. room .. ':' .. id)
      out[#out + 1] = 'held'; out[#out + 1] = room; out[#out + 1] = id; out[#out + 1] = #held
      for _, h in ipairs(held) do out[#out + 1] = h end
    end
  end
end
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not keep[m] then
    local room, id = string.match(m, '^([^\\n]*)\\n(.*)$')
    local rk = prefix .. 'room:' .. room
    local v = redis.call('HGET', rk, id)
    if v and parse(v) == node then
      redis.call('HDEL', rk, id)
      out[#out + 1] = 'gone'; out[#out + 1] = room; out[#out + 1] = id
    end
  end
end
for room in pairs(rooms) do
  for _, id in ipairs(redis.call('LRANGE', prefix .. 'departed:' .. room, 0, -1)) do
    if redis.call('HEXISTS', prefix .. 'room:' .. room, id) == 0 then
      out[#out + 1] = 'departed'; out[#out + 1] = room; out[#out + 1] = id
    end
  end
end
redis.call('DEL', KEYS[1])
for m in pairs(keep) do redis.call('SADD', KEYS[1], m) end
if tonumber(redis.call('GET', KEYS[2]) or '0') < maxSeq then redis.call('SET', KEYS[2], maxSeq) end
return out
`,
};

/** Every script, by the command name the broker defines for it. */
export const SCRIPTS = {
  parleyJoin: JOIN,
  parleyRemoveMember: REMOVE_MEMBER,
  parleyPublish: PUBLISH,
  parleyBroadcast: BROADCAST,
  parleyHeartbeat: HEARTBEAT,
  parleyFindDead: FIND_DEAD,
  parleyReregister: REREGISTER,
} as const;

/** The keys and channels of the layout above, under one prefix. */
export interface RedisKeys {
  readonly prefix: string;
  readonly seq: string;
  readonly nodes: string;
  readonly dead: string;
  room(room: string): string;
  held(room: string, id: string): string;
  heldBytes(room: string, id: string): string;
  departed(room: string): string;
  alive(node: string): string;
  members(node: string): string;
  /** A node's pub/sub channel. */
  channel(node: string): string;
  revoked(key: string): string;
}

/** The key layout under `prefix`. */
export function redisKeys(prefix: string): RedisKeys {
  return {
    prefix,
    seq: `${prefix}seq`,
    nodes: `${prefix}nodes`,
    dead: `${prefix}dead`,
    room: (room) => `${prefix}room:${room}`,
    held: (room, id) => `${prefix}held:${room}:${id}`,
    heldBytes: (room, id) => `${prefix}heldbytes:${room}:${id}`,
    departed: (room) => `${prefix}departed:${room}`,
    alive: (node) => `${prefix}node:${node}:alive`,
    members: (node) => `${prefix}node:${node}:members`,
    channel: (node) => `${prefix}node:${node}`,
    revoked: (key) => `${prefix}revoked:${key}`,
  };
}

/** Each script as a command on the ioredis connection that defined it (`defineCommand`). */
export interface ScriptCommands {
  parleyJoin(...args: (string | number)[]): Promise<(string | number)[]>;
  parleyRemoveMember(...args: (string | number)[]): Promise<(string | number)[]>;
  parleyPublish(...args: (string | number | Buffer)[]): Promise<number[]>;
  parleyBroadcast(...args: (string | number)[]): Promise<number>;
  parleyHeartbeat(...args: (string | number)[]): Promise<number>;
  parleyFindDead(...args: (string | number)[]): Promise<string[]>;
  parleyReregister(...args: (string | number)[]): Promise<(string | number)[]>;
}
