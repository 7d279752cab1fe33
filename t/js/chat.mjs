// Two people chat through matrix-js-sdk, unchanged: register, create a
// room, invite, join, exchange messages and read receipts; each sees the
// other's messages arrive through the SDK's own /sync loop.
//
//   node t/js/chat.mjs <base URL>
//
// Prints one line per step ("ok <step>") and exits 0, or prints
// "not ok <step>: <why>" and exits 1.

import { fail, invited, joined, register, started, texts, waitFor } from "./setup.mjs";

const alice = await register("alice");
const bob = await register("bob");
console.log("ok register");

await started(alice, "alice syncs");
await started(bob, "bob syncs");
console.log("ok both clients sync");

const { room_id: roomId } = await alice.createRoom({ name: "js chat", preset: "private_chat",
                                                     invite: [bob.getUserId()] });
console.log("ok createRoom");

await invited(bob, roomId, "bob sees the invite");
console.log("ok bob sees the invite");

await bob.joinRoom(roomId);
await joined(alice, roomId, bob.getUserId(), "alice sees bob join");
console.log("ok bob joins, alice sees it");

await alice.sendTextMessage(roomId, "hello bob");
await waitFor("message", "bob receives alice's message", 10000, () => texts(bob, roomId).includes("hello bob"));
console.log("ok bob receives alice's message");

await bob.sendTextMessage(roomId, "hi alice");
await waitFor("message", "alice receives bob's reply", 10000, () => texts(alice, roomId).includes("hi alice"));
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
