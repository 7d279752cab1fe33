// Two people chat in an encrypted room through matrix-js-sdk and its Rust
// crypto, unchanged: each device uploads its keys, finds the other's
// through /keys/query and the device lists of /sync, claims a one-time
// key, shares the room key by to-device message, and decrypts what the
// other sends.  A new device of bob's must show up for alice through
// device_lists.changed.
//
//   node t/js/e2ee.mjs <base URL>
//
// Prints one line per step ("ok <step>") and exits 0, or prints
// "not ok <step>: <why>" and exits 1.

import * as sdk from "matrix-js-sdk";

const base = process.argv[2];
const run = Date.now().toString(36);
const log = { debug() {}, info() {}, log() {}, warn() {}, error() {},
              trace() {}, getChild() { return log; } };

function fail(step, why) {
    console.log(`not ok ${step}: ${why}`);
    process.exit(1);
}

async function register(name) {
    const c = sdk.createClient({ baseUrl: base, logger: log });
    const user = `${name}${run}`;
    let res;
    try {
        res = await c.registerRequest({ username: user, password: `pw-${user}-1` });
    } catch (e) {
        const session = e.data && e.data.session;
        if (!session) fail(`register ${name}`, e.message);
        res = await c.registerRequest({ username: user, password: `pw-${user}-1`,
                                        auth: { type: "m.login.dummy", session } });
    }
    return client(res);
}

function client(res) {
    return sdk.createClient({ baseUrl: base, accessToken: res.access_token,
                              userId: res.user_id, deviceId: res.device_id,
                              logger: log });
}

function waitFor(what, step, ms, cond) {
    return new Promise((resolve) => {
        const t = setTimeout(() => fail(step, `no ${what} within ${ms} ms`), ms);
        const check = () => { if (cond()) { clearTimeout(t); resolve(); return true; } return false; };
        if (!check()) {
            const i = setInterval(() => { if (check()) clearInterval(i); }, 20);
        }
    });
}

// an asynchronous condition, tried every 100 ms
async function poll(step, ms, cond) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        if (await cond()) return;
        await new Promise((r) => setTimeout(r, 100));
    }
    fail(step, `not within ${ms} ms`);
}

async function started(c, step) {
    try {
        await c.initRustCrypto({ useIndexedDB: false });
    } catch (e) {
        fail(step, `initRustCrypto: ${e.message}`);
    }
    return new Promise((resolve) => {
        const t = setTimeout(() => fail(step, "the first sync did not complete"), 30000);
        c.on(sdk.ClientEvent.Sync, (state) => {
            if (state === "PREPARED" || state === "SYNCING") { clearTimeout(t); resolve(); }
            if (state === "ERROR") fail(step, "sync error");
        });
        c.startClient({ initialSyncLimit: 10 });
    });
}

// the bodies a client could decrypt of the room's messages
const texts = (c, roomId) => (c.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [])
    .filter((e) => e.getType() === "m.room.message").map((e) => e.getContent().body);

const alice = await register("alice");
const bob = await register("bob");
console.log("ok register");

await started(alice, "alice syncs with crypto");
await started(bob, "bob syncs with crypto");
console.log("ok both clients sync with crypto");

// the device keys each uploaded, as the other sees them
const devices = async (c, user) =>
    (await c.getCrypto().getUserDeviceInfo([user], true)).get(user) ?? new Map();
await poll("alice sees bob's device keys", 15000,
           async () => (await devices(alice, bob.getUserId())).has(bob.getDeviceId()));
console.log("ok alice sees bob's device keys");

const { room_id: roomId } = await alice.createRoom({
    name: "js e2ee", preset: "private_chat", invite: [bob.getUserId()],
    initial_state: [{ type: "m.room.encryption", state_key: "",
                      content: { algorithm: "m.megolm.v1.aes-sha2" } }] });
await waitFor("invite", "bob sees the invite", 10000, () => {
    const r = bob.getRoom(roomId);
    return r && r.getMyMembership() === "invite";
});
await bob.joinRoom(roomId);
await waitFor("join", "alice sees bob join", 10000, () => {
    const r = alice.getRoom(roomId);
    return r && r.getMember(bob.getUserId())?.membership === "join";
});
console.log("ok an encrypted room, both joined");

await alice.sendTextMessage(roomId, "secret for bob");
const sent = alice.getRoom(roomId).getLiveTimeline().getEvents()
    .filter((e) => e.getSender() === alice.getUserId()).pop();
if (sent.getWireType() !== "m.room.encrypted") {
    fail("alice's message is encrypted", `sent as ${sent.getWireType()}`);
}
console.log("ok alice's message is sent encrypted");

await waitFor("decrypted message", "bob decrypts alice's message", 20000,
              () => texts(bob, roomId).includes("secret for bob"));
console.log("ok bob decrypts alice's message");

await bob.sendTextMessage(roomId, "secret for alice");
await waitFor("decrypted message", "alice decrypts bob's reply", 20000,
              () => texts(alice, roomId).includes("secret for alice"));
console.log("ok alice decrypts bob's reply");

// bob logs in on a second device: alice learns of it through /sync
const login = await sdk.createClient({ baseUrl: base, logger: log }).login("m.login.password", {
    identifier: { type: "m.id.user", user: bob.getUserId() },
    password: `pw-${bob.getUserId().slice(1).split(":")[0]}-1` });
const bob2 = client(login);
await started(bob2, "bob's second device syncs with crypto");
// without downloading: the SDK queries again when device_lists.changed
// names bob
await poll("alice learns of bob's second device", 20000, async () =>
    ((await alice.getCrypto().getUserDeviceInfo([bob.getUserId()], false))
        .get(bob.getUserId()) ?? new Map()).has(bob2.getDeviceId()));
console.log("ok alice learns of bob's second device through device_lists");

await alice.sendTextMessage(roomId, "for both of bob's devices");
await waitFor("decrypted message", "bob's second device decrypts it", 20000,
              () => texts(bob2, roomId).includes("for both of bob's devices"));
console.log("ok bob's second device decrypts alice's next message");

alice.stopClient();
bob.stopClient();
bob2.stopClient();
process.exit(0);
