// The review pages' only script: each <time datetime="…"> is shown in the
// viewer's local time; its title keeps the UTC value. Without this script
// the pages show the UTC text, and nothing else depends on it.
(function () {
  "use strict";
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var t = times[i];
    var d = new Date(t.getAttribute("datetime"));
    if (isNaN(d.getTime())) continue;
    t.textContent = d.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", timeZoneName: "short"
    });
    t.setAttribute("data-local", "1");
  }
})();
