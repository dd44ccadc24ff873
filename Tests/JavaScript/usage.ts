// A page's use of the client, type-checked against plexor.d.ts (never run).
import { Plexor, type PlexorMessage, type PlexorReset, type PlexorStatus, PlexorHTTPError } from "../../Sources/PlexorGateway/Assets/plexor.js";

const plexor = new Plexor("http://127.0.0.1:8080", { namespace: "site1:", storageKey: "plexor-cursors" });
const subscription = plexor.subscribe("chat", (message: PlexorMessage) => {
  const seq: number = message.seq;
  const tags: Record<string, number> = message.tags;
  console.log(message.tag, seq, message.time, message.data, tags);
}, { cursor: 0 });
const stop: () => void = plexor.on("status", (status: PlexorStatus) => console.log(status));
plexor.on("reset", (reset: PlexorReset) => console.log(reset.tag, reset.reason, reset.cursor));
plexor.on("error", (error: Error) => {
  if (error instanceof PlexorHTTPError) console.log(error.status, error.retryAfter);
});
subscription.unsubscribe();
stop();
plexor.close();
