// Realplexor's browser API on Plexor's client (node --test; no packages).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Dklab_Realplexor } from "../../Sources/PlexorGateway/Assets/realplexor.js";
import { scriptedGateway } from "./scripted-gateway.mjs";

const noWait = () => Promise.resolve();
const tagsOf = (poll) => poll.url.searchParams.get("tags").split(",").sort();

test("nothing is polled before execute(); then one poll carries every id, namespaced", async () => {
  const gateway = scriptedGateway();
  const realplexor = new Dklab_Realplexor("http://rpl.test:8088/?ignored=1", "ns_", { fetch: gateway.fetch, sleep: noWait });
  realplexor.subscribe("a", () => {}).subscribe("b", () => {});
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(gateway.polls.length, 0);
  realplexor.execute();
  const poll = await gateway.next();
  assert.equal(poll.url.origin + poll.url.pathname, "http://rpl.test:8088/poll");
  assert.deepEqual(tagsOf(poll), ["ns_a", "ns_b"]);
});

test("callbacks get (data, id, cursor) with the id as subscribed and the cursor as a string", async () => {
  const gateway = scriptedGateway();
  const realplexor = new Dklab_Realplexor("http://rpl.test/", "ns_", { fetch: gateway.fetch, sleep: noWait });
  const calls = [];
  realplexor.subscribe("a", (...args) => calls.push(args));
  realplexor.execute();
  gateway.answer(await gateway.next(), {
    messages: [{ id: 9, tags: { ns_a: 4 }, time: "2026-12-02T10:00:00.000000Z", data: { text: "hi" } }],
    cursors: { ns_a: 4 },
  });
  const next = await gateway.next();
  assert.deepEqual(calls, [[{ text: "hi" }, "a", "4"]]);
  assert.deepEqual(tagsOf(next), ["ns_a@4"]);
});

test("setCursor takes a seq; a cursor Plexor never issued is from now; logon prefixes the login", async () => {
  const gateway = scriptedGateway();
  const realplexor = new Dklab_Realplexor("http://rpl.test/", "", { fetch: gateway.fetch, sleep: noWait });
  realplexor.logon("user");
  realplexor.setCursor("a", "17");
  realplexor.setCursor("b", "1795682590.55441000200000");
  realplexor.subscribe("a", () => {}).subscribe("b", () => {});
  realplexor.execute();
  assert.deepEqual(tagsOf(await gateway.next()), ["user_a@17", "user_b"]);
  assert.throws(() => realplexor.logon("bad login"), /not made of/);
  assert.throws(() => realplexor.subscribe("a-b", () => {}), /not made of/);
});

test("unsubscribe(id, null) drops every callback of the id at the next execute()", async () => {
  const gateway = scriptedGateway();
  const realplexor = new Dklab_Realplexor("http://rpl.test/", "", { fetch: gateway.fetch, sleep: noWait });
  const kept = [];
  const dropped = [];
  realplexor.subscribe("a", (data) => kept.push(data)).subscribe("b", (data) => dropped.push(data));
  realplexor.subscribe("b", (data) => dropped.push(data));
  realplexor.execute();
  await gateway.next();
  realplexor.unsubscribe("b", null);
  realplexor.execute();
  const poll = await gateway.next();
  assert.deepEqual(tagsOf(poll), ["a"]);
  gateway.answer(poll, { messages: [{ id: 1, tags: { a: 1 }, time: "t", data: 1 }], cursors: { a: 1 } });
  await gateway.next();
  assert.deepEqual(kept, [1]);
  assert.deepEqual(dropped, []);
});
