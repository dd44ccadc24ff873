// The browser client's logic against a scripted gateway (node --test; no packages).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Plexor } from "../../Sources/PlexorGateway/Assets/plexor.js";
import { scriptedGateway } from "./scripted-gateway.mjs";

const tagsOf = (poll) => poll.url.searchParams.get("tags").split(",");
const message = (id, tags, data) => ({ id, tags, time: "2026-12-02T10:00:00.000000Z", data });
const noWait = () => Promise.resolve();

test("one poll carries every subscription, and a new one restarts it at once keeping the cursors", async () => {
  const gateway = scriptedGateway();
  const plexor = new Plexor("http://gw.test/", { fetch: gateway.fetch, sleep: noWait });
  plexor.subscribe("chat", () => {}, { cursor: 0 });
  const first = await gateway.next();
  assert.equal(first.url.origin + first.url.pathname, "http://gw.test/poll");
  assert.deepEqual(tagsOf(first), ["chat@0"]);
  assert.equal(first.url.searchParams.get("timeout"), "25");
  plexor.subscribe("news", () => {});
  const second = await gateway.next();
  assert.equal(first.aborted, true);
  assert.deepEqual(tagsOf(second), ["chat@0", "news"]);
  plexor.close();
});

test("each subscription gets its messages once, in order, and the next poll carries the new cursors", async () => {
  const gateway = scriptedGateway();
  const plexor = new Plexor("http://gw.test", { fetch: gateway.fetch, sleep: noWait });
  const chat = [], room = [];
  plexor.subscribe("chat", (m) => chat.push(`${m.seq}:${m.data}`), { cursor: 4 });
  plexor.subscribe("room", (m) => room.push(`${m.seq}:${m.data}`), { cursor: 9 });
  const poll = await gateway.next();
  gateway.answer(poll, {
    messages: [message(1, { chat: 5 }, "a"), message(2, { chat: 6, room: 10 }, "both"), message(3, { room: 11 }, "b")],
    cursors: { chat: 6, room: 11 },
  });
  const next = await gateway.next();
  assert.deepEqual(chat, ["5:a", "6:both"]);
  assert.deepEqual(room, ["10:both", "11:b"]);
  assert.deepEqual(tagsOf(next), ["chat@6", "room@11"]);
  // The same message again (say, a replay after an abort) is not delivered twice.
  gateway.answer(next, { messages: [message(2, { chat: 6, room: 10 }, "both")], cursors: { chat: 6, room: 11 } });
  await gateway.next();
  assert.deepEqual(chat, ["5:a", "6:both"]);
  plexor.close();
});

test("unsubscribing stops delivery and drops the tag from the poll; the last one stops polling", async () => {
  const gateway = scriptedGateway();
  const plexor = new Plexor("http://gw.test", { fetch: gateway.fetch, sleep: noWait });
  const seen = [];
  const chat = plexor.subscribe("chat", (m) => seen.push(m.tag), { cursor: 0 });
  const news = plexor.subscribe("news", (m) => seen.push(m.tag), { cursor: 0 });
  await gateway.next();
  chat.unsubscribe();
  const poll = await gateway.next();
  assert.deepEqual(tagsOf(poll), ["news@0"]);
  gateway.answer(poll, { messages: [message(1, { chat: 1 }, 1), message(2, { news: 1 }, 2)], cursors: { news: 1 } });
  await gateway.next();
  assert.deepEqual(seen, ["news"]);
  news.unsubscribe();
  const count = gateway.polls.length;
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(gateway.polls.length, count);
  plexor.close();
});

test("a reset is reported and delivery goes on from the stated cursor", async () => {
  const gateway = scriptedGateway();
  const plexor = new Plexor("http://gw.test", { fetch: gateway.fetch, sleep: noWait });
  const resets = [];
  plexor.on("reset", (reset) => resets.push(reset));
  plexor.subscribe("chat", () => {}, { cursor: 3 });
  gateway.answer(await gateway.next(), { messages: [], cursors: { chat: 30 }, resets: { chat: { reason: "expired", cursor: 30 } } });
  const next = await gateway.next();
  assert.deepEqual(resets, [{ tag: "chat", reason: "expired", cursor: 30 }]);
  assert.deepEqual(tagsOf(next), ["chat@30"]);
  plexor.close();
});

test("failures back off with jitter up to 30 s, honour Retry-After, and report the status", async () => {
  const gateway = scriptedGateway();
  const waits = [];
  const statuses = [];
  const plexor = new Plexor("http://gw.test", {
    fetch: gateway.fetch, random: () => 0.5, sleep: (ms) => { waits.push(ms); return Promise.resolve(); },
  });
  plexor.on("status", (status) => statuses.push(status));
  plexor.subscribe("chat", () => {}, { cursor: 7 });
  for (let failure = 0; failure < 8; failure++) {
    gateway.answer(await gateway.next(), { error: "PostgreSQL is unavailable" }, 503);
  }
  gateway.answer(await gateway.next(), { error: "busy" }, 503, { "Retry-After": "2" });
  const after = await gateway.next();
  assert.deepEqual(waits, [250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 2000]);
  assert.deepEqual(tagsOf(after), ["chat@7"]);
  gateway.answer(after, { messages: [], cursors: { chat: 7 } });
  await gateway.next();
  assert.deepEqual(statuses, ["reconnecting", "offline", "connected"]);
  plexor.close();
  assert.equal(plexor.status, "closed");
});

test("a namespace prefixes every tag and is stripped from what the page sees", async () => {
  const gateway = scriptedGateway();
  const plexor = new Plexor("http://gw.test", { fetch: gateway.fetch, sleep: noWait, namespace: "site1:" });
  const seen = [];
  plexor.subscribe("chat", (m) => seen.push(m), { cursor: 0 });
  const poll = await gateway.next();
  assert.deepEqual(tagsOf(poll), ["site1:chat@0"]);
  gateway.answer(poll, { messages: [message(5, { "site1:chat": 1, "site1:other": 4 }, "x")], cursors: { "site1:chat": 1 } });
  await gateway.next();
  assert.equal(seen[0].tag, "chat");
  assert.deepEqual(seen[0].tags, { chat: 1, other: 4 });
  plexor.close();
});

test("cursors kept in storage let a reload resume where the page was", async () => {
  const gateway = scriptedGateway();
  const saved = new Map();
  const storage = { getItem: (key) => saved.get(key) ?? null, setItem: (key, value) => saved.set(key, value) };
  const before = new Plexor("http://gw.test", { fetch: gateway.fetch, sleep: noWait, storage, storageKey: "plexor" });
  before.subscribe("chat", () => {}, { cursor: 0 });
  gateway.answer(await gateway.next(), { messages: [message(1, { chat: 1 }, 1), message(2, { chat: 2 }, 2)], cursors: { chat: 2 } });
  await gateway.next();
  before.close();
  // The reload: a new client, no cursor given.
  const after = new Plexor("http://gw.test", { fetch: gateway.fetch, sleep: noWait, storage, storageKey: "plexor" });
  after.subscribe("chat", () => {});
  assert.deepEqual(tagsOf(await gateway.next()), ["chat@2"]);
  after.close();
  // What is kept is checked: junk is ignored.
  saved.set("plexor", '{"chat":-1,"bad tag":3}');
  const third = new Plexor("http://gw.test", { fetch: gateway.fetch, sleep: noWait, storage, storageKey: "plexor" });
  third.subscribe("chat", () => {});
  assert.deepEqual(tagsOf(await gateway.next()), ["chat"]);
  third.close();
});

test("close aborts the poll in flight; bad tags and cursors are refused at once", async () => {
  const gateway = scriptedGateway();
  const plexor = new Plexor("http://gw.test", { fetch: gateway.fetch, sleep: noWait });
  plexor.subscribe("chat", () => {});
  const poll = await gateway.next();
  plexor.close();
  assert.equal(poll.aborted, true);
  assert.throws(() => plexor.subscribe("chat", () => {}), /after close/);
  const other = new Plexor("http://gw.test", { fetch: gateway.fetch, sleep: noWait });
  assert.throws(() => other.subscribe("bad tag", () => {}), /is not a tag/);
  assert.throws(() => other.subscribe("x".repeat(129), () => {}), /is not a tag/);
  assert.throws(() => other.subscribe("chat", () => {}, { cursor: -1 }), /whole number/);
  other.close();
});

test("a token goes with every poll as a bearer token, asked for anew each time when it is a function", async () => {
  const gateway = scriptedGateway();
  let token = "g1.first";
  const plexor = new Plexor("http://gw.test", { fetch: gateway.fetch, sleep: noWait, token: () => token });
  plexor.subscribe("chat-presence:room:1", () => {}, { cursor: 0 });
  const first = await gateway.next();
  assert.equal(first.headers.Authorization, "Bearer g1.first");
  token = "g1.renewed";
  gateway.answer(first, { messages: [], cursors: { "chat-presence:room:1": 0 } });
  assert.equal((await gateway.next()).headers.Authorization, "Bearer g1.renewed");
  plexor.close();
  const plain = new Plexor("http://gw.test", { fetch: gateway.fetch, sleep: noWait });
  plain.subscribe("chat", () => {});
  assert.equal((await gateway.next()).headers.Authorization, undefined);
  plain.close();
});
