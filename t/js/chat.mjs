// Two people chat through matrix-js-sdk, unchanged: register, create a
// room, invite, join, exchange messages and read receipts; each sees the
// other's messages arrive through the SDK's own /sync loop.
//
//   node t/js/chat.mjs <base URL>
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

function started(c, step) {
    return new Promise((resolve) => {
        const t = setTimeout(() => fail(step, "the first sync did not complete"), 15000);
        c.on(sdk.ClientEvent.Sync, (state) => {
            if (state === "PREPARED" || state === "SYNCING") { clearTimeout(t); resolve(); }
            if (state === "ERROR") fail(step, "sync error");
        });
        c.startClient({ initialSyncLimit: 10 });
    });
}

const alice = await register("alice");
const bob = await register("bob");
console.log("ok register");

await started(alice, "alice syncs");
await started(bob, "bob syncs");
console.log("ok both clients sync");

const { room_id: roomId } = await alice.createRoom({ name: "js chat", preset: "private_chat",
                                                     invite: [bob.getUserId()] });
console.log("ok createRoom");

await waitFor("invite", "bob sees the invite", 10000, () => {
    const r = bob.getRoom(roomId);
    return r && r.getMyMembership() === "invite";
});
console.log("ok bob sees the invite");

await bob.joinRoom(roomId);
await waitFor("join", "alice sees bob join", 10000, () => {
    const r = alice.getRoom(roomId);
    return r && r.getMember(bob.getUserId())?.membership === "join";
});
console.log("ok bob joins, alice sees it");

const texts = (c) => (c.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [])
    .filter((e) => e.getType() === "m.room.message").map((e) => e.getContent().body);

await alice.sendTextMessage(roomId, "hello bob");
await waitFor("message", "bob receives alice's message", 10000, () => texts(bob).includes("hello bob"));
console.log("ok bob receives alice's message");

await bob.sendTextMessage(roomId, "hi alice");
await waitFor("message", "alice receives bob's reply", 10000, () => texts(alice).includes("hi alice"));
console.log("ok alice receives bob's reply");

const last = bob.getRoom(roomId).getLiveTimeline().getEvents()
    .filter((e) => e.getType() === "m.room.message" && e.getSender() === alice.getUserId()).pop();
await bob.sendReadReceipt(last);
await waitFor("receipt", "alice sees bob's read receipt", 10000, () => {
    const r = alice.getRoom(roomId);
    // true: the receipt bob sent, not the one implied by his own message
    return r && r.getEventReadUpTo(bob.getUserId(), true) === last.getId();
});
console.log("ok alice sees bob's read receipt");

const name = alice.getRoom(roomId).name;
if (name !== "js chat") fail("room name", `got ${name}`);
console.log("ok the room has its name");

alice.stopClient();
bob.stopClient();
process.exit(0);
