/* On every NiceGUI page: the service worker, the connection status, the caseload for the offline picker,
 * and keeping a form the worker is typing into when the connection drops.
 *
 * NiceGUI needs its socket: while it is down, nothing typed reaches the server. So the moment the page
 * loses it (or the browser reports no network) on a visit, wishes-and-feelings or life-story form, every
 * field marked `data-field="name"` is copied into a sealed draft (SeenDrafts), and again on every change
 * while the page stays offline. If the same page gets its connection back, NiceGUI replays what was
 * typed and the page is the record again, so the copy is let go. If the page is lost instead (reloaded
 * offline, closed, or its server session gone), the draft stays for the offline page to finish and send.
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
  let draft = null; // this page's captured draft, once the connection has dropped
  let wasOffline = false;
  let liveSince = 0;
  let leaving = false;
  let saving = null;
  let saveAgain = false;

  // ---------------------------------------------------------------- connection

  function socketUp() {
    // Before NiceGUI has made its socket, the page has just come from the server: count it as up.
    return !window.socket || window.socket.connected;
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
        // A row of a list (a safety score, an action): its controls in order are the row's columns.
        const row = {};
        nativeControls(el).forEach((control, i) => {
          if (rows.columns[i]) row[rows.columns[i][0]] = control.value;
        });
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
    if (!draft || leaving) return;
    const stored = await Drafts.getDraft(draft.id);
    if (stored && stored.state === "writing") await Drafts.deleteDraft(draft.id);
    draft = null;
  }

  function onEdit() {
    if (!isLive() && formInfo()) captureNow();
  }

  // ---------------------------------------------------------------- status in the header

  async function showStatus() {
    const el = document.getElementById("seen-connection");
    if (!el) return;
    const text = await Drafts.statusText(isLive());
    if (el.textContent !== text) el.textContent = text;
    el.dataset.state = isLive() ? "online" : "offline";
    const waiting = (await Drafts.counts()).total > 0;
    el.title = waiting ? "Open the drafts kept on this phone" : "";
    el.style.cursor = waiting ? "pointer" : "";
    el.onclick = waiting ? () => (location.href = "/offline") : null;
  }

  // ---------------------------------------------------------------- the loop

  async function tick() {
    const live = isLive();
    if (!live) {
      liveSince = 0;
      if (!wasOffline && formInfo()) await captureNow(); // the moment it drops: keep what is on screen
      wasOffline = true;
    } else {
      if (!liveSince) liveSince = Date.now();
      if (wasOffline && Date.now() - liveSince >= LIVE_AGAIN_MS) {
        wasOffline = false;
        await letGoOfDraft();
      }
      if ((await Drafts.counts()).ready && !Drafts.sending && !wasOffline) await Drafts.sendReady();
    }
    await showStatus();
  }

  async function refreshCaseload() {
    // Only on signed-in pages (they have the header's status): the sign-in page has no caseload to fetch.
    if (!isLive() || !document.getElementById("seen-connection")) return;
    const cached = await Drafts.loadCaseload();
    const age = cached ? Date.now() - Date.parse(cached.saved) : Infinity;
    if (location.pathname === "/" || age > CASELOAD_MAX_AGE_MS) {
      try {
        await Drafts.refreshCaseload();
      } catch (e) {
        /* offline or signed out: the cached copy stays */
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
    document.addEventListener("input", onEdit, true);
    document.addEventListener("change", onEdit, true);
    document.addEventListener("click", () => setTimeout(onEdit, 50), true);
    window.addEventListener("offline", tick);
    window.addEventListener("online", tick);
    window.addEventListener("pagehide", () => {
      leaving = true;
      if (draft) captureNow();
    });
    Drafts.onChange(showStatus);
    setInterval(tick, 1000);
    setTimeout(refreshCaseload, 1000);
    tick();
  }

  window.SeenPage = { flush: captureNow, formInfo, snapshot: () => formInfo() && snapshot(formInfo()), tick };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
