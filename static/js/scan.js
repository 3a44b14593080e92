// The door's ticket scanner (progressive enhancement: without a camera or the browser's BarcodeDetector the
// code is typed or pasted into the field, or the attendee is found by name below). The camera starts only
// when the door staff press the button; the first QR code read fills the field and sends the form, whose
// answer (checked in, or already checked in at) the server renders.
(function () {
  "use strict";
  var form = document.querySelector("[data-scanner]");
  if (!form || typeof window.BarcodeDetector !== "function" || !navigator.mediaDevices) { return; }
  var start = form.querySelector("[data-scan-start]");
  var video = form.querySelector("[data-scan-video]");
  var field = form.elements.code;
  start.hidden = false;
  start.addEventListener("click", function () {
    var detector = new window.BarcodeDetector({ formats: [form.dataset.scanner] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (stream) {
      video.srcObject = stream;
      video.hidden = false;
      start.hidden = true;
      video.play();
      var look = function () {
        detector.detect(video).then(function (codes) {
          if (codes.length && codes[0].rawValue) {
            stream.getTracks().forEach(function (track) { track.stop(); });
            field.value = codes[0].rawValue;
            form.submit();
            return;
          }
          window.requestAnimationFrame(look);
        }, function () { window.requestAnimationFrame(look); });
      };
      look();
    }, function () { field.focus(); });
  });
})();
