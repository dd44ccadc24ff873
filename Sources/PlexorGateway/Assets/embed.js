// Plexor's chat widget, on the host page: sizes the widget's iframe, tells the
// page how many messages are unread, and hands the widget the site's signed
// token for its signed-in user. Messages go only to and from the gateway's
// origin.
//
//   <iframe src="https://chat.example.net/embed?room=example" title="Live chat" ...></iframe>
//   <script src="https://chat.example.net/embed.js" async
//           data-token-url="/chat-token"></script>   (optional: returns the token as text)
//
// Without an iframe on the page, data-room="example" makes one where the script is.
// PlexorChat.setToken(token) hands a token over at any time; each iframe
// fires "plexor:unread" (event.detail.count) on itself.
(() => {
  const script = /** @type {HTMLScriptElement | null} */ (document.currentScript);
  if (!script) return;
  const gateway = new URL(script.src).origin;
  let token = null;

  const widgets = () => [...document.querySelectorAll("iframe")].filter((frame) => {
    try {
      const url = new URL(frame.src, location.href);
      return url.origin === gateway && url.pathname === "/embed";
    } catch {
      return false;
    }
  });

  if (script.dataset.room && widgets().length === 0) {
    const frame = document.createElement("iframe");
    const url = new URL("/embed", gateway);
    for (const name of ["room", "theme", "accent", "background", "text", "lang"]) {
      if (script.dataset[name]) url.searchParams.set(name, script.dataset[name]);
    }
    frame.src = url.href;
    frame.title = script.dataset.title || "Live chat";
    frame.width = script.dataset.width || "320";
    frame.height = script.dataset.height || "480";
    frame.style.border = "1px solid #ccc";
    script.after(frame);
  }

  async function siteToken() {
    if (token) return token;
    const url = script.dataset.tokenUrl;
    if (!url) return null;
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return null;
      return (await response.text()).trim() || null;
    } catch {
      return null;
    }
  }

  async function sendToken(frame) {
    const value = await siteToken();
    if (value) frame.contentWindow?.postMessage({ type: "plexor-token", token: value }, gateway);
  }

  window.addEventListener("message", (event) => {
    if (event.origin !== gateway) return;
    const frame = widgets().find((candidate) => candidate.contentWindow === event.source);
    const message = event.data;
    if (!frame || !message || typeof message !== "object") return;
    switch (message.type) {
      case "plexor-ready":
        sendToken(frame);
        break;
      case "plexor-height": {
        const maximum = Number(frame.dataset.maxHeight) || 640;
        const height = Math.max(240, Math.min(maximum, Number(message.height) || 0));
        if (frame.dataset.autoresize !== "off") frame.style.height = `${height}px`;
        break;
      }
      case "plexor-unread":
        frame.dispatchEvent(new CustomEvent("plexor:unread", { detail: { count: Number(message.count) || 0 }, bubbles: true }));
        break;
    }
  });

  /** @type {any} */ (window).PlexorChat = {
    /** Signs the widgets in as the site's user (a token the site's backend signed). */
    setToken(value) {
      token = value;
      for (const frame of widgets()) sendToken(frame);
    },
  };
})();
