// What the matrix-js-sdk scenarios (chat.mjs, e2ee.mjs) share: the server's
// URL from the command line, registering a user and making their client,
// starting a client's /sync loop, and waiting for what a client should see.
// Every step a scenario reports is a line "ok <step>"; fail() prints
// "not ok <step>: <why>" and ends the script with 1.

import * as sdk from "matrix-js-sdk";

export { sdk };

export const base = process.argv[2];
const run = Date.now().toString(36);
export const log = { debug() {}, info() {}, log() {}, warn() {}, error() {},
                     trace() {}, getChild() { return log; } };

export function fail(step, why) {
    console.log(`not ok ${step}: ${why}`);
    process.exit(1);
}

// the password register() gives the user of that localpart
export const password = (localpart) => `pw-${localpart}-1`;

// a new user "<name><run>" (through m.login.dummy when the server asks
// for UIA), and their client
export async function register(name) {
    const c = sdk.createClient({ baseUrl: base, logger: log });
    const user = `${name}${run}`;
    let res;
    try {
        res = await c.registerRequest({ username: user, password: password(user) });
    } catch (e) {
        const session = e.data && e.data.session;
        if (!session) fail(`register ${name}`, e.message);
        res = await c.registerRequest({ username: user, password: password(user),
                                        auth: { type: "m.login.dummy", session } });
    }
    return client(res);
}

// the client of a register or login response
export function client(res) {
    return sdk.createClient({ baseUrl: base, accessToken: res.access_token,
                              userId: res.user_id, deviceId: res.device_id,
                              logger: log });
}

// a condition, checked every 20 ms until it holds; fails the step after ms
export function waitFor(what, step, ms, cond) {
    return new Promise((resolve) => {
        const t = setTimeout(() => fail(step, `no ${what} within ${ms} ms`), ms);
        const check = () => { if (cond()) { clearTimeout(t); resolve(); return true; } return false; };
        if (!check()) {
            const i = setInterval(() => { if (check()) clearInterval(i); }, 20);
        }
    });
}

// the client's /sync loop started, and its first sync done (within ms);
// with crypto, the Rust crypto set up first
export async function started(c, step, { crypto = false, ms = 15000 } = {}) {
    if (crypto) {
        try {
            await c.initRustCrypto({ useIndexedDB: false });
        } catch (e) {
            fail(step, `initRustCrypto: ${e.message}`);
        }
    }
    return new Promise((resolve) => {
        const t = setTimeout(() => fail(step, "the first sync did not complete"), ms);
        c.on(sdk.ClientEvent.Sync, (state) => {
            if (state === "PREPARED" || state === "SYNCING") { clearTimeout(t); resolve(); }
            if (state === "ERROR") fail(step, "sync error");
        });
        c.startClient({ initialSyncLimit: 10 });
    });
}

// c sees their invite to the room
export const invited = (c, roomId, step) => waitFor("invite", step, 10000, () => {
    const r = c.getRoom(roomId);
    return r && r.getMyMembership() === "invite";
});

// c sees the user joined to the room
export const joined = (c, roomId, userId, step) => waitFor("join", step, 10000, () => {
    const r = c.getRoom(roomId);
    return r && r.getMember(userId)?.membership === "join";
});

// the bodies of the room's messages a client has (decrypted, if need be)
export const texts = (c, roomId) => (c.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [])
    .filter((e) => e.getType() === "m.room.message").map((e) => e.getContent().body);
