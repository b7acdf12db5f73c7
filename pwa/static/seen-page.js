/* On every NiceGUI page: the service worker, the connection status, the caseload for the offline picker,
 * drafts the server refused, and keeping a form the worker is filling in when the connection drops.
 *
 * NiceGUI needs its socket: while it is down, nothing typed or tapped reaches the server, and what the
 * socket buffers meanwhile (a tapped Submit) would be replayed when it comes back. So the moment a form
 * page loses it (or the browser reports no network), the page HANDS THE FORM OVER: in one go, with the
 * form made inert so no tap can fall between, every field marked `data-field="name"` is read from the
 * screen (text, dates, and the Quasar radios' and option groups' `aria-checked` choices), sealed as a
 * draft (SeenDrafts), and the worker is taken to the offline form (/offline?draft=ID, which the service
 * worker serves with no network) with that draft open and every answer filled in. From there the offline
 * page is the one place the form lives: it keeps every edit, submits once, and sends when the signal is
 * back. The draft's id is the form's `data-submission-key` when the page has one (the key the server
 * holds one record per), so however the form reaches the server it is stored once.
 *
 * A form with a photo uploader (the life-story form, marked `data-offline-photos`) stays on the page
 * instead: the server holds a photo picked online in the page's memory until the entry is saved, so the
 * page keeps a small copy of each until it shows it holds it (`data-photo-sha`, the file's SHA-256). If
 * the connection drops, the words and copies go into a sealed draft, and again on every change; a photo
 * picked with no connection goes straight into the draft. If the same page gets its connection back,
 * NiceGUI replays what was typed, the photos it does not show are handed to its uploader, and the draft
 * is let go once the page shows them all. If the page is lost instead, the offline page finishes it.
 */
(function () {
  "use strict";
  const Drafts = window.SeenDrafts;
  const pageId = crypto.randomUUID();
  // The URL segment after /child/{id}/ that names each kind of form, when the page does not say itself.
  const KIND_BY_SEGMENT = { visit: "visit", wishes: "wishes_and_feelings", "wishes-and-feelings": "wishes_and_feelings",
                            wishes_and_feelings: "wishes_and_feelings", "life-story": "life_story", life_story: "life_story" };
  const LIVE_AGAIN_MS = 3000; // connected this long after a drop, with no reload: the page holds the form again
  const CASELOAD_MAX_AGE_MS = 10 * 60 * 1000;
  const HAND_OVER_WAIT_MS = 30000; // a photo handed back to the live page and not shown by then stays in the draft
  const UPLOAD_WAIT_MS = 120000; // a photo picked online the page has not shown by then never reached it
  let draft = null; // this page's captured draft, once the connection has dropped
  let wasOffline = false;
  let droppedAt = 0; // when the connection last went
  let reconciling = false;
  let liveSince = 0;
  let leaving = false;
  let saving = null;
  let saveAgain = false;

  // ---------------------------------------------------------------- connection

  // Until NiceGUI's socket has connected once, whether the page is online is not known: a page loading
  // online takes a moment to connect. It counts as up for that moment (at most UNKNOWN_AT_MOST_MS), and
  // the header says nothing rather than "Offline"; once it has connected, a socket not connected is down.
  const loadedAt = Date.now();
  const UNKNOWN_AT_MOST_MS = 5000;
  let connectedOnce = false;

  function socketConnected() {
    const up = Boolean(window.socket && window.socket.connected);
    if (up) connectedOnce = true;
    return up;
  }

  function socketUp() {
    return socketConnected() || (!connectedOnce && Date.now() - loadedAt <= UNKNOWN_AT_MOST_MS);
  }

  function isLive() {
    return navigator.onLine && socketUp();
  }

  // ---------------------------------------------------------------- the form on this page

  let schema = null;
  function offlineSchema() {
    if (schema === null) {
      const el = document.getElementById("seen-offline-schema");
      try {
        schema = el ? JSON.parse(el.textContent) : {};
      } catch (e) {
        schema = {};
      }
    }
    return schema;
  }

  function formInfo() {
    if (!document.querySelector("[data-field]")) return null;
    const marked = document.querySelector("[data-offline-form]");
    const match = location.pathname.match(/^\/child\/([^/]+)\/([^/?#]+)/);
    const kind = (marked && marked.dataset.offlineForm) || (match && KIND_BY_SEGMENT[match[2]]);
    const childId = (marked && marked.dataset.childId) || (match && decodeURIComponent(match[1]));
    if (!kind || !childId) return null;
    return { kind, childId };
  }

  function schemaField(kind, name) {
    return ((offlineSchema()[kind] || {}).fields || []).find((f) => f.name === name);
  }

  function optionCode(kind, name, text) {
    // Radios and selects show labels; the server wants codes. Map a label back when the schema knows it.
    const field = schemaField(kind, name);
    const t = String(text).trim().toLowerCase();
    if (field && field.type === "yesno") return t === "yes" || t === "no" ? t : text;
    if (!field || !field.options) return text;
    const hit = field.options.find(([code, label]) => code.toLowerCase() === t || label.toLowerCase() === t);
    return hit ? hit[0] : text;
  }

  function nativeControls(el) {
    return [...el.querySelectorAll("textarea, input:not([type=hidden]), select")];
  }

  function valueOf(el) {
    const own = ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName) ? el : null;
    const native = own || nativeControls(el)[0];
    if (native && (native.type === "checkbox" || native.type === "radio") && !el.querySelector("[role=radio]")) {
      return native.checked;
    }
    if (el.matches("[role=radiogroup]") || el.querySelector("[role=radio]")) {
      const picked = el.querySelector("[role=radio][aria-checked=true]");
      return picked ? picked.textContent.trim() : "";
    }
    const toggle = el.matches("[role=checkbox],[role=switch]") ? el : el.querySelector("[role=checkbox],[role=switch]");
    if (!native && toggle) return toggle.getAttribute("aria-checked") === "true";
    if (native && !native.readOnly) return native.value;
    const shown = el.querySelector(".q-field__native");
    if (shown) return shown.textContent.trim();
    return native ? native.value : el.textContent.trim();
  }

  function put(target, path, value) {
    // "actions.0.description" fills fields.actions[0].description: rows of a list come back as a list.
    const parts = path.split(".");
    let node = target;
    parts.forEach((part, i) => {
      const last = i === parts.length - 1;
      const nextIsIndex = !last && /^\d+$/.test(parts[i + 1]);
      if (last) node[part] = value;
      else node = node[part] = node[part] || (nextIsIndex ? [] : {});
    });
  }

  function snapshot(info) {
    const fields = {};
    const rowFields = {};
    for (const field of (offlineSchema()[info.kind] || {}).fields || []) {
      if (field.row_field) rowFields[field.row_field] = field;
    }
    for (const el of document.querySelectorAll("[data-field]")) {
      const name = el.getAttribute("data-field");
      if (el.parentElement && el.parentElement.closest("[data-field]")) continue; // inside a row, read with it
      const rows = rowFields[name];
      if (rows) {
        // A row of a list (a safety score, an action): its controls in order are the row's typed columns; a
        // column carried but not typed (a safety goal's id) is an element of its own, [data-col][data-value].
        const row = {};
        const typed = rows.columns.filter((column) => column[2] !== "hidden");
        nativeControls(el).forEach((control, i) => {
          if (typed[i]) row[typed[i][0]] = control.value;
        });
        for (const kept of el.querySelectorAll("[data-col]")) row[kept.dataset.col] = kept.dataset.value || "";
        (fields[rows.name] = fields[rows.name] || []).push(row);
        continue;
      }
      let value = valueOf(el);
      if (typeof value === "string") value = optionCode(info.kind, name.split(".").pop(), value);
      put(fields, name, value);
    }
    for (const field of Object.values(rowFields)) fields[field.name] = fields[field.name] || [];
    for (const [key, value] of Object.entries(fields)) {
      if (Array.isArray(value)) fields[key] = value.filter((row) => row !== undefined);
    }
    return fields;
  }

  async function childLabel(childId) {
    const caseload = await Drafts.loadCaseload();
    const child = caseload && caseload.children.find((c) => c.id === childId);
    return child ? child.initials + (child.age !== null && child.age !== undefined ? ", " + child.age : "") : "";
  }

  async function captureNow() {
    const info = formInfo();
    if (!info) return;
    if (saving) {
      saveAgain = true;
      return saving;
    }
    saving = (async () => {
      do {
        saveAgain = false;
        if (!draft) {
          const caseload = await Drafts.loadCaseload();
          draft = Drafts.newDraft({ kind: info.kind, childId: info.childId, childLabel: await childLabel(info.childId),
                                    source: "form", pageId, workerId: (caseload && caseload.worker_id) || "" });
        }
        draft.fields = snapshot(info);
        await keepCopiesInDraft();
        await Drafts.saveDraft(draft);
      } while (saveAgain);
    })();
    try {
      await saving;
    } finally {
      saving = null;
    }
  }

  async function letGoOfDraft() {
    // The live page has the form again (NiceGUI replayed what was typed): the copy would only duplicate it.
    // Returns false while the page does not yet show every photo the draft keeps: the draft stays till then.
    if (!draft || leaving) return true;
    const stored = await Drafts.getDraft(draft.id);
    if (stored && stored.state === "writing") {
      if (!(await photosBackOnPage())) return false;
      await Drafts.deleteDraft(draft.id);
    } else {
      // Submitted from the offline page meanwhile: the photos the page does not show went with it.
      const shown = shownOnPage();
      copies.filter((c) => c.photoId && !onPage(c, shown)).forEach(forget);
      copies.forEach((c) => (c.photoId = null));
    }
    draft = null;
    return true;
  }

  // ---------------------------------------------------------------- photos picked on this page

  // Each copy: shas (of the files sent for it: the one picked, and the small copy if handed over again),
  // blobSha, blob, width, height, photoId (in the draft), seen (the page showed it), handed (when its upload
  // began, 0 for none under way), url (its thumbnail's).
  const copies = [];
  let handingOver = false;
  let photoProblem = "";

  function photoLimits() {
    const info = formInfo();
    return (info && (offlineSchema()[info.kind] || {}).photos) || { max: 6, max_side: 1600, max_bytes: 4 << 20, max_total_bytes: 12 << 20 };
  }

  function shownOnPage() {
    return new Set([...document.querySelectorAll("[data-photo-sha]")].map((el) => el.getAttribute("data-photo-sha")));
  }

  function onPage(copy, shown) {
    return [...copy.shas].some((sha) => shown.has(sha));
  }

  async function sha256(blob) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function copyOf(file, uploaded) {
    // Throws Drafts.PhotoProblem for a file that is not a photo this browser can read.
    const { blob, width, height } = await Drafts.preparePhoto(file, photoLimits());
    const blobSha = await sha256(blob);
    return { shas: new Set(uploaded ? [await sha256(file)] : []), blobSha, blob, width, height, photoId: null,
             seen: false, handed: uploaded ? Date.now() : 0, url: URL.createObjectURL(blob) };
  }

  function forget(copy) {
    copies.splice(copies.indexOf(copy), 1);
    URL.revokeObjectURL(copy.url);
  }

  async function keepCopiesInDraft() {
    for (const copy of copies) {
      if (copy.photoId || !draft) continue;
      copy.photoId = (await Drafts.addPhoto(draft, copy.blob, { width: copy.width, height: copy.height, sha: copy.blobSha })).id;
    }
  }

  function onPhotoPicked(event) {
    const input = event.target;
    if (handingOver || !(input instanceof HTMLInputElement) || input.type !== "file") return;
    if (!input.closest("[data-offline-photos]") || !formInfo()) return;
    const files = [...(input.files || [])]; // read now: the uploader empties the input as it takes them
    if (!files.length) return;
    if (navigator.onLine && socketConnected()) {
      // The uploader sends them; the copies wait until the page shows it has them. Counted now, before the
      // page can show any: one the page will refuse for want of room needs no copy.
      copyUploaded(files.slice(0, Math.max(0, photoLimits().max - photosForEntry())), Date.now());
      return;
    }
    event.stopImmediatePropagation(); // no connection: an upload would only fail
    input.value = "";
    keepOffline(files);
  }

  function photosForEntry() {
    // What the entry would hold: the photos the page shows, and the copies it does not show yet.
    const shown = shownOnPage();
    return shown.size + document.querySelectorAll("[data-photo-kept]").length + copies.filter((c) => !onPage(c, shown)).length;
  }

  async function copyUploaded(files, pickedAt) {
    for (const file of files) {
      try {
        const copy = await copyOf(file, true);
        if (droppedAt >= pickedAt) copy.handed = 0; // the connection went with its upload while it was copied
        copies.push(copy);
      } catch (e) {
        if (!(e instanceof Drafts.PhotoProblem)) throw e; // the server says what is wrong with it
      }
    }
    if (draft || !isLive()) await captureNow(); // the connection went while they were being copied
  }

  async function keepOffline(files) {
    const limits = photoLimits();
    photoProblem = "";
    for (const file of files) {
      if (photosForEntry() >= limits.max) {
        photoProblem = "An entry can hold up to " + limits.max + " photos.";
        break;
      }
      let copy;
      try {
        copy = await copyOf(file, false);
      } catch (e) {
        if (!(e instanceof Drafts.PhotoProblem)) throw e;
        photoProblem = e.message;
        continue;
      }
      if (copies.reduce((sum, c) => sum + c.blob.size, 0) + copy.blob.size > limits.max_total_bytes) {
        URL.revokeObjectURL(copy.url);
        photoProblem = "This entry's photos are as big as one entry can send. Put this photo in another entry.";
        break;
      }
      copies.push(copy);
    }
    await captureNow();
    showPhotoNote();
  }

  function forgetPhotosThePageLetGo() {
    // Live: a photo the page showed and shows no more was added to the book, or removed by the worker. One
    // it never showed, long after its upload began, never reached it (and the worker saw no thumbnail): its
    // copy must not join a later entry.
    const shown = shownOnPage();
    for (const copy of [...copies]) {
      if (onPage(copy, shown)) copy.seen = true;
      else if (copy.photoId) continue;
      else if (copy.seen || (copy.handed && Date.now() - copy.handed > UPLOAD_WAIT_MS)) forget(copy);
    }
  }

  async function photosBackOnPage() {
    // Live again: photos the page still shows need nothing; the rest are handed to its uploader.
    const shown = shownOnPage();
    for (const copy of [...copies]) {
      if (!onPage(copy, shown)) continue;
      copy.seen = true;
      if (copy.photoId) await Drafts.removePhoto(draft, copy.photoId);
      copy.photoId = null;
    }
    const missing = copies.filter((c) => !onPage(c, shown));
    if (!missing.length) return true;
    const waiting = missing.filter((c) => !c.handed);
    if (waiting.length) handOver(waiting);
    if (missing.every((c) => c.handed && Date.now() - c.handed > HAND_OVER_WAIT_MS)) {
      // The page would not take them (full, or the upload failed): they stay in the draft, for the offline page.
      missing.forEach(forget);
      draft = null;
    }
    return false;
  }

  function handOver(list) {
    const inputs = [...document.querySelectorAll("[data-offline-photos] input[type=file]")];
    const input = inputs.find((i) => i.multiple) || inputs[0];
    if (!input) {
      // The page takes no more photos now: counted as tried, so the draft keeps them once the wait is over.
      list.forEach((copy) => (copy.handed = Date.now()));
      return;
    }
    const transfer = new DataTransfer();
    for (const copy of input.multiple ? list : list.slice(0, 1)) {
      transfer.items.add(new File([copy.blob], "photo.jpg", { type: "image/jpeg" }));
      copy.shas.add(copy.blobSha); // the page gets this small copy, not the file first picked
      copy.handed = Date.now();
    }
    input.files = transfer.files;
    handingOver = true;
    try {
      input.dispatchEvent(new Event("change", { bubbles: true }));
    } finally {
      handingOver = false;
    }
  }

  function showPhotoNote() {
    // What the page cannot show while it has no connection: the photos kept on the phone for this entry.
    const kept = copies.filter((c) => c.photoId);
    let note = document.getElementById("seen-photo-note");
    if (!kept.length && !photoProblem) {
      if (note) note.remove();
      return;
    }
    if (!note) {
      note = document.createElement("div");
      note.id = "seen-photo-note";
      note.setAttribute("role", "status");
      note.style.cssText = "position:fixed;left:0;right:0;bottom:0;z-index:7000;background:#fff;color:#111;" +
        "border-top:3px solid #1d4f91;padding:.5rem .75rem;font:15px/1.4 system-ui,sans-serif";
      document.body.append(note);
    }
    const words = kept.length === 1 ? "1 photo is" : kept.length + " photos are";
    const text = kept.length ? words + " kept sealed on this phone with this entry, and will be added when the " +
      "connection is back." : "";
    const key = kept.map((c) => c.photoId).join() + "|" + photoProblem;
    if (note.dataset.key === key) return;
    note.dataset.key = key;
    note.replaceChildren();
    if (text) note.append(Object.assign(document.createElement("p"), { textContent: text, style: "margin:0" }));
    if (photoProblem) {
      note.append(Object.assign(document.createElement("p"), { textContent: photoProblem, style: "margin:0;color:#b3261e;font-weight:600" }));
    }
    const row = document.createElement("div");
    row.style.cssText = "display:flex;gap:.25rem;flex-wrap:wrap";
    kept.forEach((copy, i) => {
      row.append(Object.assign(document.createElement("img"), { src: copy.url, alt: "Kept photo " + (i + 1),
                                                                 style: "width:48px;height:48px;object-fit:cover" }));
    });
    note.append(row);
  }

  function onEdit() {
    // Making the form inert blurs the field being typed in, which fires its change: the form is handed over
    // by then, and must not be kept a second time.
    if (handedOver || isLive() || !formInfo()) return;
    if (handsFormOver()) handFormOver();
    else captureNow();
  }

  // ---------------------------------------------------------------- handing a form over to the offline page

  const HAND_OVER_GRACE_MS = 300; // a socket closed because the page is being left is not a lost signal
  let handedOver = false;

  function submissionKey() {
    // The key the form was opened with (the server holds one record per key): the draft's id when there is one.
    const el = document.querySelector("[data-submission-key]");
    const key = el ? (el.getAttribute("data-submission-key") || "").trim() : "";
    return key.length >= 8 && key.length <= 64 ? key : "";
  }

  function handsFormOver() {
    // A form without photos, on a page the service worker controls (it serves the offline page with no network).
    return Boolean(formInfo() && !document.querySelector("[data-offline-photos]") &&
                   "serviceWorker" in navigator && navigator.serviceWorker.controller);
  }

  async function handFormOver() {
    if (handedOver || leaving) return;
    const info = formInfo();
    handedOver = true;
    // Inert in the same moment the answers are read, so no tap falls between the reading and the leaving;
    // nothing covers the form.
    document.body.inert = true;
    const fields = snapshot(info);
    const id = submissionKey() || crypto.randomUUID();
    try {
      const kept = await Drafts.getDraft(id);
      if (!kept || kept.state !== "ready") {
        const caseload = await Drafts.loadCaseload();
        const handed = Drafts.newDraft({ id, kind: info.kind, childId: info.childId, childLabel: await childLabel(info.childId),
                                         fields, source: "form", pageId, workerId: (caseload && caseload.worker_id) || "" });
        if (kept) handed.created = kept.created;
        await Drafts.saveDraft(handed);
      } // else: submitted from the offline page already, and on its way: it is not written over
      location.assign("/offline?draft=" + encodeURIComponent(id));
    } catch (e) {
      document.body.inert = false;
      handedOver = false;
      throw e;
    }
  }

  // ---------------------------------------------------------------- status in the header

  function connectionKnown() {
    socketConnected();
    return connectedOnce || !navigator.onLine || Date.now() - loadedAt > UNKNOWN_AT_MOST_MS;
  }

  async function showStatus() {
    const el = document.getElementById("seen-connection");
    if (!el) return;
    if (!connectionKnown()) {
      el.textContent = "";
      el.dataset.state = "unknown";
      return;
    }
    const text = await Drafts.statusText(isLive());
    if (el.textContent !== text) el.textContent = text;
    el.dataset.state = isLive() ? "online" : "offline";
    const waiting = (await Drafts.counts()).total > 0;
    // The header cuts a long status short on a narrow phone: its full words stay in the title (and the text).
    el.title = text + (waiting ? ": open the drafts kept on this phone" : "");
    el.style.cursor = waiting ? "pointer" : "";
    el.onclick = waiting ? () => (location.href = "/offline") : null;
  }

  // ---------------------------------------------------------------- the loop

  let socketWatched = false;

  async function tick() {
    if (!socketWatched && window.socket) {
      socketWatched = true; // told at once when the socket goes, not at the next tick
      window.socket.on("disconnect", () => setTimeout(tick, HAND_OVER_GRACE_MS));
    }
    if (handedOver) return;
    const live = isLive();
    if (!live) {
      liveSince = 0;
      if (!wasOffline) {
        droppedAt = Date.now();
        // An upload under way went with the connection: the photo is handed to the page again when it is back.
        const shown = shownOnPage();
        copies.filter((c) => !onPage(c, shown)).forEach((c) => (c.handed = 0));
        // The moment it drops: hand the form to the offline page, or keep what is on screen in a draft.
        if (handsFormOver()) await handFormOver();
        else if (formInfo()) await captureNow();
      }
      wasOffline = true;
    } else {
      if (!liveSince) liveSince = Date.now();
      if (wasOffline && Date.now() - liveSince >= LIVE_AGAIN_MS && !reconciling) {
        reconciling = true; // one at a time: two ticks must not hand the same photo over twice
        try {
          if (await letGoOfDraft()) wasOffline = false;
        } finally {
          reconciling = false;
        }
      }
      if (!wasOffline) forgetPhotosThePageLetGo();
      const counts = await Drafts.counts();
      if (counts.ready && !Drafts.sending && !wasOffline) await Drafts.sendReady();
      const childHas = window.SeenChildGuard && window.SeenChildGuard.held(); // Seen answers only the child's routes
      if (counts.total > counts.ready && !wasOffline && !childHas) await Drafts.forgetWhatSeenHolds();
    }
    if (live) photoProblem = "";
    showPhotoNote();
    await showStatus();
  }

  async function refreshCaseload(tries = 0) {
    // Only on signed-in pages (they have the header's status): the sign-in page has no caseload to fetch.
    if (!document.getElementById("seen-connection")) return;
    // Not connected yet (a slow phone, a weak signal): try again shortly, for up to a couple of minutes,
    // so the offline picker's copy is kept even when the page's first second was not live.
    const later = () => { if (tries < 60) setTimeout(() => refreshCaseload(tries + 1), 2000); };
    if (!isLive()) return later();
    const cached = await Drafts.loadCaseload();
    const age = cached ? Date.now() - Date.parse(cached.saved) : Infinity;
    if (location.pathname === "/" || age > CASELOAD_MAX_AGE_MS) {
      try {
        if ((await Drafts.refreshCaseload()) === null && !cached) later();
      } catch (e) {
        if (!cached) later(); /* offline or signed out: the cached copy stays */
      }
    }
  }

  function start() {
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/sw.js", { scope: "/", updateViaCache: "none" }).catch((e) => {
        console.warn("Seen: the service worker could not be registered", e);
      });
      navigator.serviceWorker.ready.then((registration) => {
        if (!navigator.serviceWorker.controller && registration.active) registration.active.postMessage({ type: "seen-claim" });
      });
    }
    document.addEventListener("change", onPhotoPicked, true); // before the uploader's own listener
    document.addEventListener("input", onEdit, true);
    document.addEventListener("change", onEdit, true);
    document.addEventListener("click", () => setTimeout(onEdit, 50), true);
    window.addEventListener("offline", tick);
    window.addEventListener("online", tick);
    window.addEventListener("beforeunload", () => (leaving = true));
    window.addEventListener("pagehide", () => {
      leaving = true;
      if (draft) captureNow();
    });
    Drafts.onChange(showStatus);
    setInterval(tick, 1000);
    setTimeout(refreshCaseload, 1000);
    tick();
    // Say the connection state as soon as it is known, not at the next tick.
    const untilKnown = setInterval(() => {
      if (connectionKnown()) {
        clearInterval(untilKnown);
        showStatus();
      }
    }, 50);
  }

  window.SeenPage = { flush: captureNow, formInfo, snapshot: () => formInfo() && snapshot(formInfo()), tick, submissionKey,
                     schema: offlineSchema };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
