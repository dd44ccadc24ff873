// Plexor's chat widget: the page /embed serves inside a site's iframe. Text
// people type is only ever set as textContent, never parsed as HTML.
import { Plexor } from "./plexor.js";

const config = JSON.parse(document.getElementById("plexor-config").textContent);
const STRINGS = {
  en: {
    messages: "Messages", people: "People here", peopleCount: (n) => `${n} here`, older: "Load older messages",
    newMessages: "New messages ↓", nickname: "Your name", join: "Join", signIn: "Sign in…", signOut: "Sign out",
    signedInAs: (name) => `Signed in as ${name}. Sign out`, write: "Write a message", send: "Send",
    sending: "sending…", failed: (why) => `not sent: ${why}`, retry: "Retry", deleted: "message deleted",
    delete: "Delete", deleteMessage: (name) => `Delete the message from ${name}`, ban: "Ban 1 h",
    banPerson: (name) => `Ban ${name} for an hour`, verified: "verified by the site", guest: "guest",
    via: (provider) => `signed in with ${provider}`, reconnecting: "Connection lost; reconnecting…",
    offline: "Offline; retrying…", tooFast: (s) => `Slow down: you can post again in ${s} s.`,
    banned: "You are banned from this chat.", guestsOff: "This chat is for the site's members only.",
    signInAgain: "Your session ended; join again.", cleared: "The chat was cleared.",
    slowMode: (s) => (s > 0 ? `Slow mode: one message every ${s} s.` : "Slow mode is off."),
    popupBlocked: "Allow pop-ups for this site to sign in.", noHistory: "No messages yet. Say hello!",
    unavailable: "The chat is unavailable; retrying…", joinToSee: "Join to see who is here.",
  },
  ru: {
    messages: "Сообщения", people: "Сейчас в чате", peopleCount: (n) => `${n} в чате`, older: "Загрузить ранние сообщения",
    newMessages: "Новые сообщения ↓", nickname: "Ваше имя", join: "Войти", signIn: "Войти через…", signOut: "Выйти",
    signedInAs: (name) => `Вы — ${name}. Выйти`, write: "Напишите сообщение", send: "Отправить",
    sending: "отправляется…", failed: (why) => `не отправлено: ${why}`, retry: "Повторить", deleted: "сообщение удалено",
    delete: "Удалить", deleteMessage: (name) => `Удалить сообщение ${name}`, ban: "Бан на час",
    banPerson: (name) => `Забанить ${name} на час`, verified: "подтверждён сайтом", guest: "гость",
    via: (provider) => `вход через ${provider}`, reconnecting: "Связь потеряна; переподключаемся…",
    offline: "Нет связи; пробуем снова…", tooFast: (s) => `Не так быстро: следующее сообщение через ${s} с.`,
    banned: "Вы заблокированы в этом чате.", guestsOff: "Этот чат только для участников сайта.",
    signInAgain: "Сеанс закончился; войдите снова.", cleared: "Чат очищен.",
    slowMode: (s) => (s > 0 ? `Медленный режим: одно сообщение в ${s} с.` : "Медленный режим выключен."),
    popupBlocked: "Разрешите всплывающие окна, чтобы войти.", noHistory: "Сообщений пока нет. Поздоровайтесь!",
    unavailable: "Чат недоступен; пробуем снова…", joinToSee: "Войдите, чтобы видеть, кто в чате.",
  },
};
const lang = config.lang ?? ((navigator.language ?? "en").toLowerCase().startsWith("ru") ? "ru" : "en");
const T = STRINGS[lang];
document.documentElement.lang = lang;

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ (document.getElementById(id));
const roomTag = `chat:${config.room}`;
const storageKey = `plexor-chat:${config.site}`;
const MAX_TEXT = 2000;
/** Pages that may frame the widget, and so talk to it: the site's origins and this gateway's own (its demo page). */
const hostOrigins = [...config.origins, location.origin];

/** @type {{session: string, expires: number, user: any} | null} */
let session = loadSession();
let plexor = null;
let presenceSubscription = null;
let olderCursor = null;
let unread = 0;
let localIds = 0;
/** message id → its list item */
const shown = new Map();
/** person key → user */
const people = new Map();

applyTheme(config.theme ?? {});
labelControls();
start();

// ---- Setup ----

function applyTheme(theme) {
  const root = document.documentElement;
  root.dataset.theme = theme.mode === "dark" ? "dark" : "light";
  // From URL parameters the gateway checked (#rgb or #rrggbb); set through the CSSOM, never as markup.
  for (const [name, value] of [["--accent", theme.accent], ["--bg", theme.background], ["--fg", theme.text]]) {
    if (typeof value === "string" && /^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$/.test(value)) root.style.setProperty(name, value);
  }
}

function labelControls() {
  $("log").setAttribute("aria-label", T.messages);
  $("people-heading").textContent = T.people;
  $("older").textContent = T.older;
  $("new-marker").textContent = T.newMessages;
  $("nickname-label").textContent = T.nickname;
  $("join-button").textContent = T.join;
  $("signin").textContent = T.signIn;
  $("text-label").textContent = T.write;
  input("text").placeholder = T.write;
  $("send").textContent = T.send;
  $("join-button").hidden = !config.guests;
  $("nickname").hidden = !config.guests;
  $("nickname-label").hidden = !config.guests;
}

async function start() {
  wireControls();
  if (session && session.expires - Date.now() / 1000 < 3600) await renew();
  const last = await loadHistory();
  plexor = new Plexor(location.origin, { token: () => session?.session, timeout: 25 });
  plexor.on("status", showConnection);
  plexor.subscribe(roomTag, (message) => receive(message.data, message.seq, message.time), { cursor: last });
  showSignedIn();
  tellHost({ type: "plexor-ready" });
  // The height the chat would like: its parts, with the whole list of messages (the host page clamps it).
  const sizes = new ResizeObserver(() => {
    const parts = ["bar", "people", "status", "join", "composer"].map((name) => document.querySelector(`.${name}`));
    const height = parts.reduce((sum, part) => sum + (part instanceof HTMLElement && !part.hidden ? part.offsetHeight : 0), 0)
      + $("log").scrollHeight + $("older").offsetHeight + 16;
    tellHost({ type: "plexor-height", height });
  });
  for (const id of ["log", "people", "join", "composer", "status"]) sizes.observe($(id));
}

function wireControls() {
  $("older").addEventListener("click", () => loadOlder());
  $("new-marker").addEventListener("click", () => scrollToEnd());
  $("log-wrap").addEventListener("scroll", () => {
    if (atEnd()) {
      $("new-marker").hidden = true;
      setUnread(0);
    }
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden && atEnd()) setUnread(0); });
  $("people-toggle").addEventListener("click", () => {
    const open = $("people").hidden;
    $("people").hidden = !open;
    $("people-toggle").setAttribute("aria-expanded", String(open));
  });
  $("account").addEventListener("click", signOut);
  $("join").addEventListener("submit", (event) => { event.preventDefault(); joinAsGuest(); });
  $("signin").addEventListener("click", openSignIn);
  $("composer").addEventListener("submit", (event) => { event.preventDefault(); send(); });
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  $("text").addEventListener("input", updateCounter);
  window.addEventListener("message", onWindowMessage);
}

// ---- Talking to the gateway ----

async function api(method, path, body) {
  const headers = body === undefined ? {} : { "Content-Type": "application/json" };
  if (session) headers.Authorization = `Bearer ${session.session}`;
  try {
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit", cache: "no-store",
    });
    const data = await response.json().catch(() => ({}));
    return { status: response.status, data, retryAfter: Number(response.headers.get("Retry-After")) || null };
  } catch {
    return { status: 0, data: { error: T.unavailable }, retryAfter: null };
  }
}

async function loadHistory() {
  for (let attempt = 0; ; attempt++) {
    const answer = await api("GET", `/chat/${config.room}/history?limit=50`);
    if (answer.status === 200) {
      for (const entry of answer.data.messages) receive(entry.data, entry.seq, entry.time, { history: true });
      olderCursor = answer.data.before;
      $("older").hidden = olderCursor === null;
      if (answer.data.messages.length === 0) showStatus(T.noHistory);
      scrollToEnd();
      return answer.data.last;
    }
    if (answer.status === 401 && session) forget();
    showStatus(T.unavailable);
    await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 1000 * 2 ** attempt)));
  }
}

async function loadOlder() {
  if (olderCursor === null) return;
  const answer = await api("GET", `/chat/${config.room}/history?limit=50&before=${olderCursor}`);
  if (answer.status !== 200) return showStatus(answer.data.error ?? T.unavailable);
  const log = $("log-wrap");
  const fromBottom = log.scrollHeight - log.scrollTop;
  const first = $("log").firstChild;
  for (const entry of answer.data.messages) {
    const item = renderMessage(entry.data, entry.seq, entry.time);
    if (item) $("log").insertBefore(item, first);
  }
  olderCursor = answer.data.before;
  $("older").hidden = olderCursor === null;
  log.scrollTop = log.scrollHeight - fromBottom;
}

// ---- Messages ----

/** Applies one message of the room's tag, live or from history. */
function receive(data, seq, time, { history = false } = {}) {
  if (!data || typeof data !== "object") return;
  switch (data.type) {
    case "message":
    case "system": {
      if (data.deleted && !canSeeDeleted(data)) return removeMessage(data.id);
      if (shown.has(data.id)) return;
      const item = renderMessage(data, seq, time);
      if (!item) return;
      showStatus(null);
      const follow = atEnd();
      place(item);
      if (!history) arrived(follow, data);
      return;
    }
    case "delete":
      if (canSeeDeleted(shownData(data.id))) return markDeleted(data.id);
      return removeMessage(data.id);
    case "join":
      if (data.user && session) addPerson(data.user);
      return;
    case "leave":
      if (data.user && session) removePerson(data.user.key);
      return;
    case "clear":
      $("log").replaceChildren();
      shown.clear();
      $("older").hidden = true;
      return showStatus(T.cleared);
    case "settings":
      return showStatus(T.slowMode(Number(data.slow_mode) || 0));
    default:
      return;  // anything else the site's own SQL sends: not for the widget
  }
}

function renderMessage(data, seq, time) {
  if (!data || (data.type !== "message" && data.type !== "system")) return null;
  const item = document.createElement("li");
  item.className = data.type === "system" ? "msg system" : "msg";
  if (typeof seq === "number") item.dataset.seq = String(seq);
  if (data.id !== undefined) {
    item.dataset.id = String(data.id);
    shown.set(data.id, { item, data });
  }
  if (data.type === "system") {
    item.append(textElement("p", "text", String(data.text ?? "")));
    return item;
  }
  const user = data.user ?? {};
  item.append(avatar(user));
  const body = document.createElement("div");
  body.className = "body";
  const head = document.createElement("div");
  head.className = "head";
  head.append(textElement("span", "name", String(user.name ?? "?")));
  if (user.verified) head.append(badge("verified", "✓", T.verified));
  else if (user.via) head.append(badge("via", "•", T.via(String(user.via))));
  else head.append(badge("guest", T.guest, T.guest));
  const when = document.createElement("time");
  when.className = "time";
  if (time) {
    when.dateTime = time;
    when.textContent = new Date(time).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
  }
  head.append(when);
  body.append(head);
  if (data.deleted) {
    item.classList.add("deleted");
    body.append(textElement("p", "text", T.deleted));
  } else {
    body.append(textElement("p", "text", String(data.text ?? "")));
  }
  body.append(controls(data));
  item.append(body);
  if (session && user.key === session.user.key) item.classList.add("mine");
  return item;
}

function avatar(user) {
  if (typeof user.avatar === "string" && /^https?:\/\//.test(user.avatar)) {
    const image = document.createElement("img");
    image.className = "avatar";
    image.alt = "";
    image.referrerPolicy = "no-referrer";
    image.src = user.avatar;
    return image;
  }
  const initials = String(user.name ?? "?").trim().split(/\s+/).slice(0, 2).map((word) => [...word][0] ?? "").join("").toUpperCase();
  const span = textElement("span", "avatar initials", initials || "?");
  span.setAttribute("aria-hidden", "true");
  return span;
}

function badge(kind, text, label) {
  const span = textElement("span", `badge ${kind}`, text);
  span.title = label;
  span.setAttribute("aria-label", label);
  return span;
}

function controls(data) {
  const box = document.createElement("span");
  box.className = "controls";
  const me = session?.user;
  if (!me || data.deleted || data.id === undefined) return box;
  const mine = data.user?.key === me.key;
  if (me.mod || mine) {
    const remove = textElement("button", "control", T.delete);
    remove.type = "button";
    remove.setAttribute("aria-label", T.deleteMessage(data.user?.name ?? ""));
    remove.addEventListener("click", () => moderate({ action: "delete", id: data.id }));
    box.append(remove);
  }
  if (me.mod && !mine && data.user?.key) {
    const ban = textElement("button", "control", T.ban);
    ban.type = "button";
    ban.setAttribute("aria-label", T.banPerson(data.user.name ?? ""));
    ban.addEventListener("click", () => moderate({ action: "ban", user: data.user.key, seconds: 3600, address: !data.user.verified }));
    box.append(ban);
  }
  return box;
}

/** Draws a shown message again in its place (deleted, or for another viewer). */
function rerender(item, data) {
  const again = renderMessage(data, item.dataset.seq ? Number(item.dataset.seq) : null, item.querySelector("time")?.dateTime);
  if (again) item.replaceWith(again);
}

/**
 * Puts a message where its seq says: the room's order is the tag's, even when
 * one's own post is confirmed before an earlier message arrives. Messages
 * still being sent stay last.
 * @param {HTMLElement} item
 */
function place(item) {
  const log = $("log");
  const seq = Number(item.dataset.seq);
  let before = null;
  for (let other = /** @type {HTMLElement | null} */ (log.lastElementChild); other; other = /** @type {HTMLElement | null} */ (other.previousElementSibling)) {
    if (other.dataset.seq === undefined || Number(other.dataset.seq) > seq) before = other;
    else break;
  }
  log.insertBefore(item, before);
}

function textElement(tag, className, text) {
  const element = document.createElement(tag);
  element.className = className;
  element.textContent = text;
  return element;
}

function shownData(id) {
  return shown.get(id)?.data;
}

function canSeeDeleted(data) {
  const me = session?.user;
  return Boolean(me && data && (me.mod || data.user?.key === me.key));
}

function removeMessage(id) {
  shown.get(id)?.item.remove();
  shown.delete(id);
}

function markDeleted(id) {
  const entry = shown.get(id);
  if (!entry) return;
  const data = { ...entry.data, deleted: true, text: undefined };
  rerender(entry.item, data);
}

/** A live message arrived: follow it, or count it as unread and offer a jump. */
function arrived(follow, data) {
  const mine = session && data.user?.key === session.user.key;
  if (follow || mine) scrollToEnd();
  else $("new-marker").hidden = false;
  if (!mine && (document.hidden || !follow)) setUnread(unread + 1);
}

function atEnd() {
  const log = $("log-wrap");
  return log.scrollHeight - log.scrollTop - log.clientHeight < 24;
}

function scrollToEnd() {
  const log = $("log-wrap");
  log.scrollTop = log.scrollHeight;
  $("new-marker").hidden = true;
  if (!document.hidden) setUnread(0);
}

function setUnread(count) {
  if (count === unread) return;
  unread = count;
  tellHost({ type: "plexor-unread", count });
}

// ---- Posting ----

async function send() {
  const textarea = input("text");
  const text = textarea.value.trim();
  if (!text || !session) return;
  if (text.length > MAX_TEXT) return showStatus(T.failed(`${text.length}/${MAX_TEXT}`));
  textarea.value = "";
  updateCounter();
  const pending = renderMessage({ type: "message", user: session.user, text }, null, new Date().toISOString());
  pending.classList.add("pending");
  pending.dataset.local = String(++localIds);
  const note = textElement("span", "note", T.sending);
  pending.querySelector(".body").append(note);
  $("log").append(pending);
  scrollToEnd();
  await post(text, pending, note);
}

async function post(text, pending, note) {
  const answer = await api("POST", `/chat/${config.room}/messages`, { text });
  if (answer.status === 201) {
    const data = answer.data.data;
    if (shown.has(data.id)) {
      pending.remove();  // the live copy came first
    } else {
      const confirmed = renderMessage(data, answer.data.seq, answer.data.time);
      pending.remove();
      place(confirmed);
    }
    return;
  }
  pending.classList.add("failed");
  note.textContent = T.failed(reason(answer));
  const retry = textElement("button", "control", T.retry);
  retry.type = "button";
  retry.addEventListener("click", () => {
    retry.remove();
    pending.classList.remove("failed");
    note.textContent = T.sending;
    post(text, pending, note);
  });
  note.after(retry);
  if (answer.status === 401) forget();
}

function reason(answer) {
  if (answer.status === 429) return T.tooFast(answer.retryAfter ?? 1);
  if (answer.status === 403 && /banned/.test(answer.data.error ?? "")) return T.banned;
  if (answer.status === 403) return T.guestsOff;
  if (answer.status === 401) return T.signInAgain;
  if (answer.status === 0 || answer.status >= 500) return T.unavailable;
  return String(answer.data.error ?? answer.status);
}

function updateCounter() {
  const length = [...input("text").value].length;
  const counter = $("counter");
  counter.hidden = length < MAX_TEXT * 0.9;
  counter.textContent = `${length}/${MAX_TEXT}`;
  counter.classList.toggle("over", length > MAX_TEXT);
}

async function moderate(body) {
  const answer = await api("POST", `/chat/${config.room}/moderation`, body);
  if (answer.status !== 200) showStatus(reason(answer));
}

// ---- Signing in ----

async function joinAsGuest() {
  const name = input("nickname").value.trim();
  if (!name) return;
  const answer = await api("POST", "/chat/session", { site: config.site, guest: name });
  if (answer.status !== 201) return showStatus(answer.status === 429 ? T.tooFast(answer.retryAfter ?? 1) : reason(answer));
  signedIn(answer.data);
}

/** A session from the host page's token (by postMessage), the sign-in popup, or a join. */
function signedIn(data) {
  session = { session: data.session, expires: data.expires, user: data.user };
  store(session);
  showSignedIn();
}

async function renew() {
  const answer = await api("POST", "/chat/session", { site: config.site, renew: true });
  if (answer.status === 201) signedIn(answer.data);
  else if (answer.status === 401 || answer.status === 403) forget();
}

function forget() {
  session = null;
  store(null);
  showSignedIn();
}

function signOut() {
  forget();
  $("nickname").focus();
}

async function showSignedIn() {
  const signed = Boolean(session);
  $("join").hidden = signed;
  $("composer").hidden = !signed;
  $("account").hidden = !signed;
  $("people-toggle").hidden = !signed;
  if (!signed) {
    presenceSubscription?.unsubscribe();
    presenceSubscription = null;
    people.clear();
    renderPeople();
    return;
  }
  $("account").textContent = T.signOut;
  $("account").setAttribute("aria-label", T.signedInAs(session.user.name));
  if (!plexor) return;
  // Polling one's own presence tag (with the session as its token) is being here.
  presenceSubscription?.unsubscribe();
  presenceSubscription = plexor.subscribe(`chat-presence:${config.room}:${session.user.key}`, () => {}, { cursor: 0 });
  const answer = await api("GET", `/chat/${config.room}/presence`);
  if (answer.status === 200) {
    people.clear();
    for (const user of answer.data.people) people.set(user.key, user);
  }
  people.set(session.user.key, session.user);
  renderPeople();
  // Moderation controls depend on who is signed in.
  for (const [, entry] of shown) rerender(entry.item, entry.data);
}

function addPerson(user) {
  people.set(user.key, user);
  renderPeople();
}

function removePerson(key) {
  if (session && key === session.user.key) return;  // still here, in this tab
  people.delete(key);
  renderPeople();
}

function renderPeople() {
  const list = $("people-list");
  list.replaceChildren(...[...people.values()].sort((a, b) => String(a.name).localeCompare(String(b.name), lang)).map((user) => {
    const item = document.createElement("li");
    item.dataset.key = user.key;
    const dot = textElement("span", "dot", "");
    dot.setAttribute("aria-hidden", "true");
    item.append(dot, textElement("span", "name", String(user.name ?? "?")));
    if (user.verified) item.append(badge("verified", "✓", T.verified));
    return item;
  }));
  $("people-count").textContent = String(people.size);
  $("people-toggle").setAttribute("aria-label", T.peopleCount(people.size));
}

function openSignIn() {
  const popup = window.open(`/signin?site=${encodeURIComponent(config.site)}&lang=${lang}`, "plexor-signin", "popup,width=420,height=560");
  if (!popup) showStatus(T.popupBlocked);
}

/** From the host page (its token, by embed.js) or from the sign-in popup on this origin. */
async function onWindowMessage(event) {
  const message = event.data;
  if (!message || typeof message !== "object") return;
  if (event.origin === location.origin && message.type === "plexor-session" && message.site === config.site) {
    return signedIn(message);
  }
  if (message.type === "plexor-token" && hostOrigins.includes(event.origin) && event.source === window.parent
      && typeof message.token === "string" && message.token.length < 4096) {
    const answer = await api("POST", "/chat/session", { site: config.site, token: message.token });
    if (answer.status === 201) signedIn(answer.data);
    else showStatus(answer.data.error ?? reason(answer));  // the site's own token: say exactly what is wrong with it
  }
}

/** To the host page: only ever to an origin the site allows (never "*"). */
function tellHost(message) {
  if (window.parent === window) return;
  for (const origin of hostOrigins) window.parent.postMessage(message, origin);
}

// ---- Status and storage ----

function showConnection(status) {
  if (status === "reconnecting") showStatus(T.reconnecting);
  else if (status === "offline") showStatus(T.offline);
  else if (status === "connected" && [T.reconnecting, T.offline, T.unavailable].includes($("status").textContent)) showStatus(null);
}

function showStatus(text) {
  const status = $("status");
  status.hidden = !text;
  status.textContent = text ?? "";
}

function loadSession() {
  try {
    const stored = JSON.parse(localStorage.getItem(storageKey) ?? "null");
    if (stored && typeof stored.session === "string" && stored.expires > Date.now() / 1000 && stored.user?.key) return stored;
  } catch {
    // Storage may be blocked in a third-party frame: the session lives as long as the page.
  }
  return null;
}

function store(value) {
  try {
    if (value) localStorage.setItem(storageKey, JSON.stringify(value));
    else localStorage.removeItem(storageKey);
  } catch {
    // As above.
  }
}
