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

import { base, client, fail, invited, joined, log, password, register, sdk, started, texts,
         waitFor } from "./setup.mjs";

// an asynchronous condition, tried every 100 ms
async function poll(step, ms, cond) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        if (await cond()) return;
        await new Promise((r) => setTimeout(r, 100));
    }
    fail(step, `not within ${ms} ms`);
}

const alice = await register("alice");
const bob = await register("bob");
console.log("ok register");

const withCrypto = { crypto: true, ms: 30000 };
await started(alice, "alice syncs with crypto", withCrypto);
await started(bob, "bob syncs with crypto", withCrypto);
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
await invited(bob, roomId, "bob sees the invite");
await bob.joinRoom(roomId);
await joined(alice, roomId, bob.getUserId(), "alice sees bob join");
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
    password: password(bob.getUserId().slice(1).split(":")[0]) });
const bob2 = client(login);
await started(bob2, "bob's second device syncs with crypto", withCrypto);
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
