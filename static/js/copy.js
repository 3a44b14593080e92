// Copy buttons (progressive enhancement: without JavaScript the address stays selectable in its field). A
// button names the field it copies (data-copy) and carries the word to show once copied (data-copied): the
// server renders every word. Where the clipboard is refused, the field's text is selected instead.
(function () {
  "use strict";
  var statuses = Array.prototype.slice.call(document.querySelectorAll("[data-copy-status]"));
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.dataset.copy);
    var status = statuses.filter(function (element) { return element.dataset.copyStatus === button.dataset.copy; })[0];
    if (!field) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var selectIt = function () { field.focus(); field.select(); };
      if (!navigator.clipboard) { selectIt(); return; }
      navigator.clipboard.writeText(field.value).then(function () {
        if (status) { status.textContent = button.dataset.copied; }
      }, selectIt);
    });
  });
})();
