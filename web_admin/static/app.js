// Doorward admin: progressive enhancement only (CSP forbids inline script).
"use strict";
(function () {
  // Refresh the camera preview on the device page every few seconds.
  const view = document.getElementById("camera-view");
  if (view) {
    const base = view.getAttribute("src");
    setInterval(function () { view.src = base + "?t=" + Date.now(); }, 4000);
  }

  // The device page follows the door: tiles, the latest decision and events, every 2 s.
  const tiles = document.getElementById("device-status");
  if (tiles && window.fetch) {
    const decision = document.getElementById("decision");
    const recent = document.getElementById("recent");
    const setText = function (field, text) {
      tiles.querySelectorAll('[data-field="' + field + '"]').forEach(function (el) {
        if (el.textContent !== text) { el.textContent = text; }
      });
    };
    const setTone = function (tile, tone) {
      const el = tiles.querySelector('[data-tile="' + tile + '"]');
      if (!el) { return; }
      el.classList.remove("good", "warn", "bad");
      if (tone) { el.classList.add(tone); }
    };
    const badge = function (e) {
      const span = document.createElement("span");
      span.className = "kind k-" + e.event;
      span.title = e.event;
      span.textContent = e.words;
      return span;
    };
    const show = function (st) {
      if (st.reported) {
        setText("locked", st.locked ? "Locked" : "Unlocked");
        setTone("locked", st.locked ? "good" : "warn");
        setText("door_open", st.door_open ? "Open" : "Closed");
        setText("state_words", st.state_words || "");
        setText("lockout_words", st.lockout_words ? st.lockout_words + " left" : "");
        setTone("state", st.state === "locked_out" ? "bad" : "");
        setText("loop_alive", st.loop_alive ? "Running" : "Stopped");
        setTone("loop_alive", st.loop_alive ? "good" : "bad");
        if (st.reported_ago) { setText("reported_ago", "reported " + st.reported_ago); }
      }
      setText("last_heartbeat_ago", st.last_heartbeat_ago);
      setTone("heartbeat", st.heartbeat_late ? "warn" : "good");
      setText("queue_depth", String(st.queue_depth));
      const events = st.recent || [];
      if (decision) {
        const latest = events.find(function (e) { return e.decision; });
        if (st.state === "checking_face") {
          decision.className = "decision waiting";
          decision.textContent = "Checking the face\u2026";
          decision.removeAttribute("data-id");
        } else if (latest && latest.id !== decision.getAttribute("data-id")) {
          decision.className = "decision " + (latest.event === "granted" ? "granted" : "denied");
          decision.textContent = latest.time + " " + latest.line;
          decision.setAttribute("data-id", latest.id);
        }
      }
      if (recent && events.length) {
        document.getElementById("recent-card").hidden = false;
        const items = events.map(function (e) {
          const li = document.createElement("li");
          li.append(e.time + " ", badge(e), " " + e.line);
          if (e.distance !== null && e.distance !== undefined) {
            const d = document.createElement("span");
            d.className = "muted";
            d.textContent = " face distance " + e.distance.toFixed(2);
            li.append(" ", d);
          }
          return li;
        });
        recent.replaceChildren.apply(recent, items);
      }
    };
    const poll = function () {
      fetch(tiles.dataset.url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (st) { if (st) { show(st); } })
        .catch(function () { /* the next poll tries again */ });
    };
    setInterval(poll, 2000);
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
