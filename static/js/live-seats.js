// Live seat counter on an event page (progressive enhancement: without JavaScript the page shows the
// count as it was when loaded). Listens to the server-sent events of /events/<slug>/seats/?language=..,
// whose values carry the counter's text made by the server in the page's language (wording and plural
// forms from the catalog): this script shows it as is and holds no user-facing text of its own. A change
// is also announced to the page (a "seats-changed" event on the document) for opening.js.
(function () {
  "use strict";
  var element = document.querySelector("[data-live-seats]");
  if (!element || !window.EventSource) { return; }
  var source = new EventSource(element.dataset.liveSeats);
  var waitlisted = null;  // the line's length in the last news
  source.addEventListener("seats", function (message) {
    var news = JSON.parse(message.data);
    var changed = typeof news.text === "string" && news.text !== element.textContent;
    var lineShorter = waitlisted !== null && typeof news.waitlisted === "number" && news.waitlisted < waitlisted;
    if (typeof news.waitlisted === "number") { waitlisted = news.waitlisted; }
    if (typeof news.text === "string") { element.textContent = news.text; }
    element.classList.toggle("is-full", news.full);
    element.dataset.full = news.full ? "true" : "false";
    if (changed || lineShorter) {
      document.dispatchEvent(new CustomEvent("seats-changed", {detail: {lineShorter: lineShorter}}));
    }
  });
})();
