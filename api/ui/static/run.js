// The run page, live: every 2 s the server renders the changing part again (escaped there) and
// it replaces the old one, until the run has ended. No framework, nothing from elsewhere.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var live = document.getElementById("live");
  if (!live) { return; }
  var url = live.getAttribute("data-live-url");

  function ended() {
    var section = live.querySelector("section.run");
    return section && section.getAttribute("data-terminal") === "true";
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store", redirect: "manual" })
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/ui/login"); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          live.innerHTML = html;
          live.setAttribute("data-updated", new Date().toISOString());
        }
      })
      .catch(function () { /* the API is restarting: try again at the next tick */ })
      .then(function () { if (!ended()) { window.setTimeout(poll, POLL_MS); } });
  }

  if (!ended()) { window.setTimeout(poll, POLL_MS); }
})();
