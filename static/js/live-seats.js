// Live seat counter on an event page (progressive enhancement: without JavaScript the page shows the
// count as it was when loaded). Listens to the server-sent events of /events/<slug>/seats/.
(function () {
  "use strict";
  var element = document.querySelector("[data-live-seats]");
  if (!element || !window.EventSource) { return; }
  var labels = element.dataset;
  function label(news) {
    if (news.cancelled) { return labels.labelCancelled; }
    if (news.capacity === null) { return labels.labelUnlimited; }
    var text = news.full ? labels.labelFull
      : (news.seats_left === 1 ? labels.labelLeftOne : labels.labelLeftOther).replace("{n}", news.seats_left);
    if (news.waitlisted > 0) { text += " · " + labels.labelWaiting.replace("{n}", news.waitlisted); }
    return news.capacity + " · " + text;
  }
  var source = new EventSource(element.dataset.liveSeats);
  source.addEventListener("seats", function (message) {
    var news = JSON.parse(message.data);
    element.textContent = label(news);
    element.classList.toggle("is-full", news.full);
    element.dataset.full = news.full ? "true" : "false";
  });
})();
