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

  // Keep the live log scrolled to the bottom while "follow" is ticked. htmx fires afterSettle once
  // per inserted line: the scroll is done once per frame, not once per line (each read of
  // scrollHeight lays out the whole log).
  var keepFromBottom = null;  // while earlier lines load: the reader's distance from the bottom
  var scheduled = false;
  function earlierLines(event) {
    var path = (event.detail && event.detail.requestConfig && event.detail.requestConfig.path) || "";
    return path.indexOf("before=") !== -1;
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var log = document.getElementById("log");
    if (!log || !earlierLines(event)) { return; }
    // Asking for earlier lines means reading them: stop following, and keep the lines in view
    // where they are while the earlier ones are put above them.
    var follow = document.getElementById("follow");
    if (follow) { follow.checked = false; }
    keepFromBottom = log.scrollHeight - log.scrollTop;
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (scheduled) { return; }
    scheduled = true;
    var anchored = earlierLines(event);
    requestAnimationFrame(function () {
      scheduled = false;
      var log = document.getElementById("log");
      var follow = document.getElementById("follow");
      if (!log) { return; }
      if (anchored && keepFromBottom !== null) {
        log.scrollTop = log.scrollHeight - keepFromBottom;
        keepFromBottom = null;
      } else if (follow && follow.checked) {
        log.scrollTop = log.scrollHeight;
      }
    });
  });
  document.addEventListener("DOMContentLoaded", function () {
    var log = document.getElementById("log");
    if (log) { log.scrollTop = log.scrollHeight; }
  });
})();
