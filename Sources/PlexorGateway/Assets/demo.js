// The demo page's own script: the snippet for this gateway, and the widget's
// unread count shown as a host page would.
document.getElementById("snippet").textContent =
  `<iframe src="${location.origin}/embed?room=YOUR-SITE" title="Live chat" width="320" height="480" style="border:1px solid #ccc"></iframe>\n` +
  `<script src="${location.origin}/embed.js" async></script>`;
document.getElementById("chat").addEventListener("plexor:unread", (event) => {
  document.getElementById("unread").textContent = String(/** @type {CustomEvent} */ (event).detail.count);
});
