// Small behaviours for console pages. No inline scripts: the Content-Security-Policy forbids them.
(function () {
  // Show times in the browser's timezone: the server reads the `tz` cookie from the next page on
  // (no reload: it could wipe a form being typed; until then times say UTC).
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var current = (document.cookie.match(/(?:^|; )tz=([^;]*)/) || [])[1];
    if (tz && decodeURIComponent(current || "") !== tz) {
      document.cookie = "tz=" + encodeURIComponent(tz) + "; path=/; SameSite=Lax; max-age=31536000";
    }
  } catch (e) { /* older browsers: times stay in UTC, labelled as such */ }

  // Keep the live log scrolled to the bottom while "follow" is ticked.
  document.addEventListener("htmx:afterSettle", function (event) {
    // Not when the reader asked for earlier lines: they want to read those, up there.
    var path = (event.detail && event.detail.requestConfig && event.detail.requestConfig.path) || "";
    if (path.indexOf("before=") !== -1) { return; }
    var log = document.getElementById("log");
    var follow = document.getElementById("follow");
    if (log && follow && follow.checked) { log.scrollTop = log.scrollHeight; }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var log = document.getElementById("log");
    if (log) { log.scrollTop = log.scrollHeight; }
  });
})();
