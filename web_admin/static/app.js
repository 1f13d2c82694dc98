// Doorward admin: progressive enhancement only (CSP forbids inline script).
"use strict";
(function () {
  // Refresh the camera preview on the device page every few seconds.
  const view = document.getElementById("camera-view");
  if (view) {
    const base = view.getAttribute("src");
    setInterval(function () { view.src = base + "?t=" + Date.now(); }, 4000);
  }

  // Webcam: where the browser has one, show its picture to the simulated door camera.
  const box = document.querySelector(".webcam");
  if (box && navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.isSecureContext) {
    box.hidden = false;
    const start = document.getElementById("webcam-start");
    const video = document.getElementById("webcam-video");
    const snap = document.getElementById("webcam-snap");
    start.addEventListener("click", function () {
      navigator.mediaDevices.getUserMedia({ video: true, audio: false }).then(function (stream) {
        video.srcObject = stream;
        video.hidden = false; snap.hidden = false; start.hidden = true;
        return video.play();
      }).catch(function (err) { start.textContent = "No webcam: " + err.name; });
    });
    snap.addEventListener("click", function () {
      if (!video.videoWidth) { snap.textContent = "No picture from the webcam yet"; return; }
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth; canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(function (blob) {
        const form = new FormData();
        form.append("photo", blob, "webcam.jpg");
        fetch(box.dataset.url, { method: "POST", body: form, credentials: "same-origin",
          headers: { "X-CSRF-Token": box.dataset.csrf, "X-Requested-With": "fetch" } })
          .then(function (r) { return r.json(); })
          .then(function (j) { snap.textContent = j.ok ? "Sent; send again" : j.error; });
      }, "image/jpeg", 0.9);
    });
  }
})();
