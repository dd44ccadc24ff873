// Types of Plexor's browser client (/plexor.js).

export interface PlexorMessage {
  /** The message's id (unique; not in commit order). */
  id: number;
  /** The subscribed tag this delivery is for, without the namespace. */
  tag: string;
  /** The message's seq in `tag`: ascending, no gap, no repeat. */
  seq: number;
  /** When it was published, UTC, e.g. "2026-12-02T10:00:00.123456Z". */
  time: string;
  /** The JSON value as published. */
  data: unknown;
  /** Every subscribed tag of the page the message carries, with its seq there (without the namespace). */
  tags: Record<string, number>;
}

export interface PlexorReset {
  tag: string;
  /** "expired": messages after the cursor were removed by retention; "ahead": the cursor was beyond the tag's last seq. */
  reason: "expired" | "ahead";
  /** Where delivery goes on from. */
  cursor: number;
}

export type PlexorStatus = "connecting" | "connected" | "reconnecting" | "offline" | "closed";

export interface PlexorOptions {
  /** Prefixed to every tag the page names, and stripped from what it sees. */
  namespace?: string;
  /** Seconds a poll waits on the gateway (it caps this). Default 25. */
  timeout?: number;
  /** Keep cursors in sessionStorage under this key, so a reload resumes without loss or repeat. */
  storageKey?: string;
  /** Where `storageKey` lives; default sessionStorage. */
  storage?: Pick<Storage, "getItem" | "setItem">;
  /**
   * A token Plexor signed, sent as `Authorization: Bearer` with every poll:
   * needed for private tags (a grant from `plexor.grant_access()`, or a chat
   * session). A function is asked before each poll, so a renewed token is used at once.
   */
  token?: string | (() => string | null | undefined);
  /** For tests: the fetch, the randomness of the backoff, and its wait. */
  fetch?: typeof fetch;
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export class Subscription {
  readonly tag: string;
  unsubscribe(): void;
}

export class Plexor {
  constructor(url: string, options?: PlexorOptions);
  readonly url: string;
  readonly namespace: string;
  readonly status: PlexorStatus;
  /** Messages on `tag` after `cursor`: default a cursor kept from before, else from now; 0 is the oldest kept. */
  subscribe(tag: string, callback: (message: PlexorMessage) => void, options?: { cursor?: number }): Subscription;
  on(event: "status", handler: (status: PlexorStatus) => void): () => void;
  on(event: "reset", handler: (reset: PlexorReset) => void): () => void;
  on(event: "error", handler: (error: Error) => void): () => void;
  close(): void;
}

export class PlexorHTTPError extends Error {
  readonly status: number;
  /** Seconds, from the answer's Retry-After. */
  readonly retryAfter: number | null;
}
