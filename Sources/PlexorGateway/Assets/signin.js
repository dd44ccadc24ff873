export {};

// The sign-in popup, on the gateway's own origin (first-party here, so its
// cookie works even where the widget's frame may keep none): it remembers
// the person, and hands the widget that opened it a session for its site.
const config = JSON.parse(document.getElementById("plexor-signin").textContent);
const params = new URLSearchParams(location.search);
const site = params.get("site") ?? "";
const lang = params.get("lang") === "ru" || (!params.get("lang") && (navigator.language ?? "").toLowerCase().startsWith("ru")) ? "ru" : "en";
const T = {
  en: {
    heading: "Sign in to chat", known: (name, via) => `You are ${name}${via ? ` (${via})` : ""}.`, continue: (name) => `Continue as ${name}`,
    forget: "Not you? Sign out", name: "Choose a name", join: "Join", provider: (name) => `Sign in with ${name}`,
    done: "Signed in. You can close this window.", failed: "Could not sign in: ",
  },
  ru: {
    heading: "Вход в чат", known: (name, via) => `Вы — ${name}${via ? ` (${via})` : ""}.`, continue: (name) => `Продолжить как ${name}`,
    forget: "Это не вы? Выйти", name: "Выберите имя", join: "Войти", provider: (name) => `Войти через ${name}`,
    done: "Готово. Окно можно закрыть.", failed: "Не удалось войти: ",
  },
}[lang];
document.documentElement.lang = lang;
/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ (document.getElementById(id));

$("heading").textContent = T.heading;
$("name-label").textContent = T.name;
$("guest-button").textContent = T.join;
$("forget").textContent = T.forget;
if (config.provider) {
  $("providers").hidden = false;
  $("provider").textContent = T.provider(config.provider);
  /** @type {HTMLAnchorElement} */ ($("provider")).href = `/signin/oidc/start?site=${encodeURIComponent(site)}&lang=${lang}`;
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method, credentials: "same-origin", cache: "no-store",
    headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, data: await response.json().catch(() => ({})) };
}

/** Hands the session to the widget that opened this window (same origin only), then closes. */
function finish(data) {
  if (window.opener) {
    window.opener.postMessage({ type: "plexor-session", site, ...data }, location.origin);
    window.close();
  }
  show(T.done);
}

function show(text) {
  $("status").hidden = !text;
  $("status").textContent = text ?? "";
}

async function signIn(path, body) {
  const answer = await call("POST", path, body);
  if (answer.status === 201) return finish(answer.data);
  show(T.failed + (answer.data.error ?? answer.status));
}

$("guest").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn("/signin/guest", { site, name: input("name").value.trim() });
});
$("continue").addEventListener("click", () => signIn("/signin/continue", { site }));
$("forget").addEventListener("click", async () => {
  await call("POST", "/signin/out");
  $("known").hidden = true;
  $("guest").hidden = false;
  $("name").focus();
});

const me = await call("GET", "/signin/me");
if (me.status === 200) {
  $("known").hidden = false;
  $("known-text").textContent = T.known(me.data.name, me.data.via);
  $("continue").textContent = T.continue(me.data.name);
  $("continue").focus();
  // Back from the provider: nothing left to click.
  if (params.get("auto") === "1") signIn("/signin/continue", { site });
} else {
  $("guest").hidden = false;
  $("name").focus();
}
