// Plexor's browser client: one long-poll carries every subscription of the
// page, cursors are kept so nothing is lost across reconnects, gateway
// restarts or page reloads. No dependencies; served by the gateway at
// /plexor.js (types at /plexor.d.ts).

const TAG = /^[A-Za-z0-9_\-.:/]{1,128}$/;

/**
 * @typedef {{ id: number, tag: string, seq: number, time: string, data: unknown, tags: Record<string, number> }} PlexorMessage
 * @typedef {{ tag: string, reason: "expired" | "ahead", cursor: number }} PlexorReset
 * @typedef {"connecting" | "connected" | "reconnecting" | "offline" | "closed"} PlexorStatus
 * @typedef {{
 *   namespace?: string,
 *   timeout?: number,
 *   storageKey?: string,
 *   storage?: Pick<Storage, "getItem" | "setItem">,
 *   token?: string | (() => string | null | undefined),
 *   fetch?: typeof fetch,
 *   random?: () => number,
 *   sleep?: (ms: number, signal: AbortSignal) => Promise<void>,
 * }} PlexorOptions
 */

/** One subscription to one tag; `unsubscribe()` ends it. */
export class Subscription {
  /**
   * @param {Plexor} plexor
   * @param {string} tag the tag as the page names it
   * @param {(message: PlexorMessage) => void} callback
   */
  constructor(plexor, tag, callback) {
    this.tag = tag;
    /** @type {(message: PlexorMessage) => void} */
    this.callback = callback;
    /** @type {Plexor | null} */
    this.plexor = plexor;
  }

  unsubscribe() {
    this.plexor?._remove(this);
    this.plexor = null;
  }
}

export class Plexor {
  /**
   * @param {string} url the gateway, e.g. "https://comet.example.net"
   * @param {PlexorOptions} [options]
   */
  constructor(url, options = {}) {
    this.url = url.replace(/\/+$/, "");
    this.namespace = options.namespace ?? "";
    this.timeout = options.timeout ?? 25;
    this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this._random = options.random ?? Math.random;
    this._sleep = options.sleep ?? sleep;
    this._storageKey = options.storageKey ?? null;
    this._storage = options.storage ?? (this._storageKey ? globalThis.sessionStorage : null);
    /** @type {string | (() => string | null | undefined) | null} */
    this._token = options.token ?? null;
    /** @type {Map<string, Set<Subscription>>} subscriptions by full tag */
    this._subscriptions = new Map();
    /** @type {Map<string, number | null>} the cursor of each full tag (null: from now) */
    this._cursors = new Map(Object.entries(this._load()));
    /** @type {Map<string, Set<Function>>} */
    this._handlers = new Map();
    /** @type {AbortController | null} the poll (or the wait before it) in flight */
    this._inFlight = null;
    this._running = false;
    this._closed = false;
    this._failures = 0;
    /** @type {PlexorStatus} */
    this.status = "connecting";
  }

  /**
   * Calls `callback` with every message on `tag` after `cursor` (default: a
   * cursor kept from before, else from now; 0: from the oldest kept).
   * @param {string} tag
   * @param {(message: PlexorMessage) => void} callback
   * @param {{ cursor?: number }} [options]
   * @returns {Subscription}
   */
  subscribe(tag, callback, options = {}) {
    if (this._closed) throw new Error("plexor: subscribe after close()");
    const full = this.namespace + tag;
    if (!TAG.test(full)) {
      throw new Error(`plexor: "${full}" is not a tag (1-128 of A-Z a-z 0-9 _ - . : /)`);
    }
    if (typeof callback !== "function") throw new TypeError("plexor: subscribe needs a callback");
    const subscription = new Subscription(this, tag, callback);
    const existing = this._subscriptions.get(full);
    if (existing) {
      existing.add(subscription);
      return subscription;  // the tag rides the poll already, at its cursor
    }
    this._subscriptions.set(full, new Set([subscription]));
    if (options.cursor !== undefined) {
      if (!Number.isSafeInteger(options.cursor) || options.cursor < 0) {
        throw new RangeError(`plexor: cursor ${options.cursor} is not a whole number >= 0`);
      }
      this._cursors.set(full, options.cursor);
    } else if (!this._cursors.has(full)) {
      this._cursors.set(full, null);
    }
    this._restart();
    return subscription;
  }

  /**
   * `status` (connecting / connected / reconnecting / offline / closed), `reset`
   * (a cursor the gateway could not honour) or `error` (a failed poll).
   * Returns a function that removes the handler.
   * @param {"status" | "reset" | "error"} event
   * @param {Function} handler
   */
  on(event, handler) {
    const handlers = this._handlers.get(event) ?? new Set();
    handlers.add(handler);
    this._handlers.set(event, handlers);
    return () => handlers.delete(handler);
  }

  /** Ends every subscription and aborts the poll in flight. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._subscriptions.clear();
    this._inFlight?.abort();
    this._setStatus("closed");
  }

  /** @param {Subscription} subscription */
  _remove(subscription) {
    const full = this.namespace + subscription.tag;
    const set = this._subscriptions.get(full);
    if (!set?.delete(subscription) || set.size > 0) return;
    this._subscriptions.delete(full);
    this._cursors.delete(full);
    this._save();
    this._restart();
  }

  /** Starts the loop, or makes the running one poll again at once with the new set of tags. */
  _restart() {
    if (this._closed) return;
    if (this._running) {
      this._inFlight?.abort();
      return;
    }
    this._running = true;
    this._loop().finally(() => { this._running = false; });
  }

  async _loop() {
    while (!this._closed && this._subscriptions.size > 0) {
      const controller = new AbortController();
      this._inFlight = controller;
      try {
        const answer = await this._poll(controller.signal);
        this._failures = 0;
        this._setStatus("connected");
        this._apply(answer);
      } catch (error) {
        if (controller.signal.aborted) continue;  // subscriptions changed, or closed
        this._failures += 1;
        // A few failures in a row: the gateway is out of reach for now (the loop keeps trying).
        this._setStatus(this._failures >= 3 ? "offline" : "reconnecting");
        this._emit("error", error);
        const delay = this._backoff(error);
        try {
          await this._sleep(delay, controller.signal);
        } catch {
          // aborted while waiting: poll again at once
        }
      }
    }
    this._inFlight = null;
  }

  /** @param {AbortSignal} signal */
  async _poll(signal) {
    const tags = [...this._subscriptions.keys()].map((tag) => {
      const cursor = this._cursors.get(tag);
      return cursor === null || cursor === undefined ? encodeURIComponent(tag) : `${encodeURIComponent(tag)}@${cursor}`;
    });
    const token = typeof this._token === "function" ? this._token() : this._token;
    // The tags are in the query: the answer must never come from a cache.
    const response = await this._fetch(`${this.url}/poll?tags=${tags.join(",")}&timeout=${this.timeout}`, {
      signal,
      cache: "no-store",
      credentials: "omit",
      // Private tags need a token Plexor signed; never a cookie.
      ...(token ? { headers: { Authorization: `Bearer ${token}` } } : {}),
    });
    if (!response.ok) {
      const error = new PlexorHTTPError(response.status, await response.text().catch(() => ""));
      error.retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
      throw error;
    }
    return await response.json();
  }

  /** Delivers an answer's messages in order, then takes its cursors. */
  _apply(answer) {
    for (const [tag, reset] of Object.entries(answer.resets ?? {})) {
      if (!this._subscriptions.has(tag)) continue;
      this._cursors.set(tag, reset.cursor);
      this._emit("reset", { tag: this._strip(tag), reason: reset.reason, cursor: reset.cursor });
    }
    for (const message of answer.messages ?? []) {
      for (const [tag, seq] of Object.entries(message.tags)) {
        const subscriptions = this._subscriptions.get(tag);
        if (!subscriptions) continue;
        const cursor = this._cursors.get(tag);
        if (cursor !== null && cursor !== undefined && seq <= cursor) continue;  // had it already
        this._cursors.set(tag, seq);
        const seen = this._strippedTags(message.tags);
        for (const subscription of [...subscriptions]) {
          if (subscription.plexor !== this) continue;  // unsubscribed by an earlier callback
          try {
            subscription.callback({ id: message.id, tag: subscription.tag, seq, time: message.time, data: message.data, tags: seen });
          } catch (error) {
            queueMicrotask(() => { throw error; });  // the page's bug: reported, delivery goes on
          }
        }
      }
    }
    for (const [tag, cursor] of Object.entries(answer.cursors ?? {})) {
      if (this._subscriptions.has(tag)) this._cursors.set(tag, cursor);
    }
    this._save();
  }

  /** Exponential with full jitter, 0.5 s doubling up to 30 s; a Retry-After wins. */
  _backoff(error) {
    if (error instanceof PlexorHTTPError && error.retryAfter !== null) return error.retryAfter * 1000;
    const ceiling = Math.min(30_000, 500 * 2 ** Math.min(this._failures - 1, 10));
    return Math.floor(this._random() * ceiling);
  }

  /** @param {string} tag */
  _strip(tag) {
    return tag.startsWith(this.namespace) ? tag.slice(this.namespace.length) : tag;
  }

  /** @param {Record<string, number>} tags */
  _strippedTags(tags) {
    /** @type {Record<string, number>} */
    const seen = {};
    for (const [tag, seq] of Object.entries(tags)) {
      if (tag.startsWith(this.namespace)) seen[this._strip(tag)] = seq;
    }
    return seen;
  }

  /** @param {PlexorStatus} status */
  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this._emit("status", status);
  }

  _emit(event, value) {
    for (const handler of this._handlers.get(event) ?? []) {
      try {
        handler(value);
      } catch (error) {
        queueMicrotask(() => { throw error; });
      }
    }
  }

  /** @returns {Record<string, number | null>} */
  _load() {
    if (!this._storage || !this._storageKey) return {};
    try {
      const saved = JSON.parse(this._storage.getItem(this._storageKey) ?? "{}");
      /** @type {Record<string, number>} */
      const cursors = {};
      for (const [tag, cursor] of Object.entries(saved)) {
        if (TAG.test(tag) && Number.isSafeInteger(cursor) && cursor >= 0) cursors[tag] = cursor;
      }
      return cursors;
    } catch {
      return {};
    }
  }

  _save() {
    if (!this._storage || !this._storageKey) return;
    /** @type {Record<string, number>} */
    const known = {};
    for (const [tag, cursor] of this._cursors) {
      if (cursor !== null && cursor !== undefined) known[tag] = cursor;
    }
    try {
      this._storage.setItem(this._storageKey, JSON.stringify(known));
    } catch {
      // storage full or refused: cursors live on in memory
    }
  }
}

/** A poll the gateway answered with an error status. */
export class PlexorHTTPError extends Error {
  /**
   * @param {number} status
   * @param {string} body
   */
  constructor(status, body) {
    super(`plexor: the gateway answered ${status}: ${body.slice(0, 200)}`);
    this.status = status;
    /** @type {number | null} seconds */
    this.retryAfter = null;
  }
}

/** @param {string | null} value */
function parseRetryAfter(value) {
  if (value === null || !/^\d{1,6}$/.test(value.trim())) return null;
  return Number(value.trim());
}

/**
 * @param {number} ms
 * @param {AbortSignal} signal
 */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}
