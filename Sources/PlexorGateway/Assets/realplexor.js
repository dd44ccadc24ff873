// Realplexor's browser API on Plexor's client: pages that load
// http://comet.example.com:8088/?identifier=SCRIPT keep their code
// (new Dklab_Realplexor(url, namespace), subscribe, execute...). It polls the
// WAIT port's /poll with fetch and CORS, so every id's cursor comes back with
// each answer and nothing is missed between polls. The gateway serves it as
// a classic script with plexor.js before it and the module syntax removed.

import { Plexor } from "./plexor.js";

const ID = /^\w+$/;

export class Dklab_Realplexor {
  /**
   * @param {string} url the WAIT port, e.g. "http://comet.example.com:8088/"
   * @param {string} [namespace] a prefix of every id, added here and removed in callbacks
   * @param {import("./plexor.js").PlexorOptions} [options] for tests: Plexor's own options
   */
  constructor(url, namespace, options = {}) {
    this._url = String(url).replace(/[?#].*$/, "");
    this._namespace = namespace ?? "";
    if (this._namespace !== "" && !ID.test(this._namespace)) {
      throw new Error(`Dklab_Realplexor: namespace "${this._namespace}" is not made of A-Z a-z 0-9 _`);
    }
    this._options = options;
    this._login = "";
    /** @type {Map<string, Set<Function>>} callbacks by id as the page names it */
    this._callbacks = new Map();
    /** @type {Map<string, number>} cursors set before execute(), by id as the page names it */
    this._cursors = new Map();
    /** @type {Map<string, { subscription: import("./plexor.js").Subscription, full: string }>} what the client polls */
    this._active = new Map();
    /** @type {Plexor | null} */
    this._plexor = null;
  }

  /** Ids become "login_" + namespace + id (as the server's logon confines them). */
  logon(login) {
    if (!ID.test(String(login))) throw new Error(`Dklab_Realplexor: login "${login}" is not made of A-Z a-z 0-9 _`);
    this._login = `${login}_`;
    this._resubscribeAll();
  }

  /**
   * Where `id` starts at the next execute(): messages after `cursor`. A cursor
   * Plexor never issued (Realplexor's time-based ones, with a fraction) means "from now".
   */
  setCursor(id, cursor) {
    const text = String(cursor);
    if (/^\d+$/.test(text) && Number.isSafeInteger(Number(text))) {
      this._cursors.set(String(id), Number(text));
    } else {
      this._cursors.delete(String(id));
    }
    const active = this._active.get(String(id));
    if (active) {
      active.subscription.unsubscribe();
      this._active.delete(String(id));
    }
  }

  /** `callback(data, id, cursor)` for every message on `id`, from the next execute(). */
  subscribe(id, callback) {
    const name = String(id);
    if (!ID.test(name)) throw new Error(`Dklab_Realplexor: id "${name}" is not made of A-Z a-z 0-9 _`);
    if (typeof callback !== "function") throw new TypeError("Dklab_Realplexor: subscribe needs a callback");
    const callbacks = this._callbacks.get(name) ?? new Set();
    callbacks.add(callback);
    this._callbacks.set(name, callbacks);
    return this;
  }

  /** Removes `callback` from `id`, or every callback of `id` when it is null; applied at the next execute(). */
  unsubscribe(id, callback) {
    const name = String(id);
    const callbacks = this._callbacks.get(name);
    if (!callbacks) return this;
    if (callback === null || callback === undefined) {
      callbacks.clear();
    } else {
      callbacks.delete(callback);
    }
    if (callbacks.size === 0) this._callbacks.delete(name);
    return this;
  }

  /** Applies the subscriptions and polls (again) for all of them at once. */
  execute() {
    this._plexor ??= new Plexor(this._url, this._options);
    for (const [name, active] of this._active) {
      if (!this._callbacks.has(name)) {
        active.subscription.unsubscribe();
        this._active.delete(name);
      }
    }
    for (const name of this._callbacks.keys()) {
      if (this._active.has(name)) continue;
      const full = this._login + this._namespace + name;
      const cursor = this._cursors.get(name);
      this._cursors.delete(name);
      const subscription = this._plexor.subscribe(full, (message) => this._deliver(name, message),
        cursor === undefined ? {} : { cursor });
      this._active.set(name, { subscription, full });
    }
  }

  /** @param {string} name @param {import("./plexor.js").PlexorMessage} message */
  _deliver(name, message) {
    for (const callback of [...(this._callbacks.get(name) ?? [])]) {
      try {
        callback(message.data, name, String(message.seq));
      } catch (error) {
        queueMicrotask(() => { throw error; });  // the page's bug: reported, delivery goes on
      }
    }
  }

  _resubscribeAll() {
    for (const active of this._active.values()) active.subscription.unsubscribe();
    this._active.clear();
  }
}
