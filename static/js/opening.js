// What an event page does by itself around a registration opening (progressive enhancement; no text of its
// own: the server renders every word):
// - a button that waits for the opening (a form with data-opens-at) counts down on the server's clock (the
//   page carries the server's time in data-server-now: a visitor's clock may be off) and enables itself at
//   the moment, so nobody has to reload;
// - the student's own box marked data-refresh is fetched again when the seats change (live-seats.js announces
//   it), so the result shows without a reload: "true" (an entry in a lottery's draw) on any change, "line" (a
//   place in the waitlist) only when the line got shorter (a promotion, maybe this student's: a rush's every
//   registration must not make every waiting page fetch itself).
(function () {
  "use strict";

  var form = document.querySelector("[data-opens-at]");
  if (form) {
    var opensAt = Date.parse(form.dataset.opensAt);
    var offset = Date.parse(form.dataset.serverNow) - Date.now();  // the server's clock minus ours
    var shown = form.querySelector("[data-countdown]");
    var button = form.querySelector("button");
    var two = function (number) { return (number < 10 ? "0" : "") + number; };
    var tick = function () {
      var left = Math.max(0, Math.ceil((opensAt - (Date.now() + offset)) / 1000));
      shown.textContent = Math.floor(left / 3600) + ":" + two(Math.floor(left / 60) % 60) + ":" + two(left % 60);
      if (left === 0) {
        button.disabled = false;
        return;
      }
      window.setTimeout(tick, Math.min(1000, opensAt - (Date.now() + offset)));
    };
    tick();
  }

  document.addEventListener("seats-changed", function (changed) {
    var mine = document.getElementById("my-state");
    if (!mine) { return; }
    var refresh = mine.dataset.refresh;
    if (refresh !== "true" && !(refresh === "line" && changed.detail && changed.detail.lineShorter)) { return; }
    fetch(window.location.href, {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("my-state");
        var current = document.getElementById("my-state");
        if (fresh && current) { current.replaceWith(fresh); }
      })
      .catch(function () { return null; });  // the next change tries again
  });
})();
