/* Seen's offline store: drafts and the child picker's caseload, sealed in IndexedDB, and sending home.
 *
 * Everything a worker typed is sealed with AES-GCM under one key made in this browser by WebCrypto as
 * NON-EXTRACTABLE: the key is stored in IndexedDB as a CryptoKey object, so script can use it but never
 * read its bytes, and the database on disk holds only ciphertext. Only a draft's id (its idempotency key),
 * its state and when it changed are kept in clear.
 *
 * Photos taken for a life-story draft are kept the same way, one sealed record each in "photos" (a draft
 * re-sealed on every keystroke must not re-seal megabytes), bound to their draft and their own id; the
 * draft lists them. They are made small first (preparePhoto: no longer side than the server keeps, a JPEG
 * drawn through a canvas, so the camera's metadata, with where it was taken, is never stored).
 *
 * A draft is "writing" while the worker types, "ready" once they press submit, "refused" if the server
 * said what to fix (its message and problems kept with it, for the pages to show). Ready drafts are POSTed to /api/offline/drafts with their id as idempotency key and
 * removed only after the server acknowledges them, so a send cut off half way is simply sent again and
 * the server stores it once.
 *
 * Loaded by NiceGUI pages, the offline page and the service worker: it uses `self`, not `window`.
 */
(function (root) {
  "use strict";
  const DB_NAME = "seen-offline";
  const DB_VERSION = 2; // 2: the "photos" store
  const KEY_ID = "drafts-key";
  const CASELOAD_ID = "caseload";
  const CHILD_KINDS = new Set(["child_statement", "safeguarding_flag"]); // what a child says in child mode
  const channel = "BroadcastChannel" in root ? new BroadcastChannel("seen-drafts") : null;
  const listeners = new Set();
  let dbPromise = null;
  let keyPromise = null;
  let sending = false;
  let lastProblem = "";
  let writing = Promise.resolve();

  function serially(fn) {
    // Drafts are written one at a time, each sealed when its turn comes: a slow photo cannot land after,
    // and so undo, a later save of its draft.
    const run = writing.then(fn, fn);
    writing = run.catch(() => {});
    return run;
  }

  function request(req) {
    return new Promise((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  function openDb() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const req = indexedDB.open(DB_NAME, DB_VERSION);
        req.onupgradeneeded = (event) => {
          const db = req.result;
          if (event.oldVersion < 1) {
            db.createObjectStore("keys");
            db.createObjectStore("drafts", { keyPath: "id" });
            db.createObjectStore("meta");
          }
          if (event.oldVersion < 2) db.createObjectStore("photos", { keyPath: "id" }).createIndex("draftId", "draftId");
        };
        req.onsuccess = () => {
          const db = req.result;
          // A newer Seen (another tab, a new service worker) is upgrading the store: let it, and reopen.
          db.onversionchange = () => {
            db.close();
            dbPromise = null;
          };
          resolve(db);
        };
        req.onerror = () => reject(req.error);
        req.onblocked = () => console.warn("Seen: an older Seen in another tab holds the offline store; close it");
      });
      dbPromise.catch(() => (dbPromise = null));
    }
    return dbPromise;
  }

  async function withStore(name, mode, fn) {
    // `name` may be a list: one transaction over several stores, its fn given them in that order.
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(name, mode);
      let result;
      const stores = Array.isArray(name) ? name.map((n) => tx.objectStore(n)) : [tx.objectStore(name)];
      Promise.resolve(fn(...stores)).then((r) => (result = r), reject);
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  function cryptoKey() {
    if (!keyPromise) {
      keyPromise = (async () => {
        const found = await withStore("keys", "readonly", (s) => request(s.get(KEY_ID)));
        if (found) return found;
        const made = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
        // Another tab may have made one meanwhile: keep whichever was stored first.
        return withStore("keys", "readwrite", async (s) => {
          const again = await request(s.get(KEY_ID));
          if (again) return again;
          s.put(made, KEY_ID);
          return made;
        });
      })();
      keyPromise.catch(() => (keyPromise = null));
    }
    return keyPromise;
  }

  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  async function seal(value, context) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    // The record's id is bound in as associated data: a sealed body cannot be moved to another record.
    const data = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: encoder.encode(context) },
      await cryptoKey(),
      encoder.encode(JSON.stringify(value)),
    );
    return { iv, data };
  }

  async function unseal(sealed, context) {
    return JSON.parse(decoder.decode(await unsealBytes(sealed, context)));
  }

  async function sealBytes(bytes, context) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(context) },
                                             await cryptoKey(), bytes);
    return { iv, data };
  }

  async function unsealBytes(sealed, context) {
    return crypto.subtle.decrypt({ name: "AES-GCM", iv: sealed.iv, additionalData: encoder.encode(context) },
                                 await cryptoKey(), sealed.data);
  }

  // ---------------------------------------------------------------- drafts

  function newDraft({ id = "", kind = "visit", childId, childLabel = "", fields = {}, source = "offline", pageId = "",
                     workerId = "" }) {
    // `id` is the idempotency key: a form's own submission key when it has one, else a new one.
    const now = new Date().toISOString();
    return { id: id || crypto.randomUUID(), kind, childId, childLabel, fields, source, pageId, workerId,
             state: "writing", created: now, updated: now, problems: {}, message: "" };
  }

  async function draftRecord(draft) {
    draft.updated = new Date().toISOString();
    const { id, state, updated, ...content } = draft;
    return { id, state, updated, sealed: await seal(content, "seen:draft:" + id) };
  }

  function saveDraft(draft) {
    return serially(async () => {
      const record = await draftRecord(draft);
      await withStore("drafts", "readwrite", (s) => s.put(record));
      changed();
      return draft;
    });
  }

  async function openRecord(record) {
    const content = await unseal(record.sealed, "seen:draft:" + record.id);
    return { ...content, id: record.id, state: record.state, updated: record.updated };
  }

  async function getDraft(id) {
    const record = await withStore("drafts", "readonly", (s) => request(s.get(id)));
    return record ? openRecord(record) : null;
  }

  async function listDrafts() {
    const records = await withStore("drafts", "readonly", (s) => request(s.getAll()));
    const drafts = [];
    for (const record of records) {
      try {
        drafts.push(await openRecord(record));
      } catch (e) {
        console.error("Seen: a draft could not be opened", record.id, e);
      }
    }
    return drafts.sort((a, b) => a.created.localeCompare(b.created));
  }

  function deleteDraft(id) {
    // The draft and its photos go together.
    return serially(async () => {
      await withStore(["drafts", "photos"], "readwrite", async (drafts, photos) => {
        drafts.delete(id);
        for (const photoId of await request(photos.index("draftId").getAllKeys(id))) photos.delete(photoId);
      });
      changed();
    });
  }

  // ---------------------------------------------------------------- photos kept with a draft

  class PhotoProblem extends Error {}

  function photoContext(draftId, photoId) {
    return "seen:photo:" + draftId + ":" + photoId; // a sealed photo cannot be moved to another draft
  }

  function canvasOf(width, height) {
    if (typeof OffscreenCanvas !== "undefined") return new OffscreenCanvas(width, height);
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    return canvas;
  }

  function jpegOf(canvas, quality) {
    if (canvas.convertToBlob) return canvas.convertToBlob({ type: "image/jpeg", quality });
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
  }

  async function preparePhoto(file, { max_side: maxSide = 1600, max_bytes: maxBytes = 4 * 1024 * 1024 } = {}) {
    // Turned upright (the camera's orientation tag), no longer side than maxSide, a JPEG no bigger than
    // maxBytes, with nothing of the camera's metadata. Throws PhotoProblem saying what to do.
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (e) {
      throw new PhotoProblem("That file is not a photo Seen can read. Choose a JPEG or PNG photo.");
    }
    const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    const canvas = canvasOf(width, height);
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff"; // a transparent picture goes onto white, as the server does and print would
    context.fillRect(0, 0, width, height);
    context.drawImage(bitmap, 0, 0, width, height);
    bitmap.close();
    for (const quality of [0.85, 0.7, 0.5]) {
      const blob = await jpegOf(canvas, quality);
      if (blob && blob.size <= maxBytes) return { blob, width, height };
    }
    throw new PhotoProblem("That photo is too big to keep, even made smaller. Take it again at a smaller size.");
  }

  async function addPhoto(draft, blob, info = {}) {
    // Seals the photo and keeps it with the draft, both in one transaction. Returns what the draft lists.
    const id = crypto.randomUUID();
    const bytes = new Uint8Array(await blob.arrayBuffer());
    const photo = { id, width: info.width || 0, height: info.height || 0, size: bytes.length, sha: info.sha || "" };
    const sealed = await sealBytes(bytes, photoContext(draft.id, id));
    return serially(async () => {
      draft.photos = [...(draft.photos || []), photo];
      const record = await draftRecord(draft);
      await withStore(["drafts", "photos"], "readwrite", (drafts, photos) => {
        photos.put({ id, draftId: draft.id, sealed });
        drafts.put(record);
      });
      changed();
      return photo;
    });
  }

  function removePhoto(draft, photoId) {
    return serially(async () => {
      draft.photos = (draft.photos || []).filter((p) => p.id !== photoId);
      const record = await draftRecord(draft);
      await withStore(["drafts", "photos"], "readwrite", (drafts, photos) => {
        photos.delete(photoId);
        drafts.put(record);
      });
      changed();
    });
  }

  async function photoBytes(draftId, photoId) {
    const record = await withStore("photos", "readonly", (s) => request(s.get(photoId)));
    if (!record || record.draftId !== draftId) return null;
    return new Uint8Array(await unsealBytes(record.sealed, photoContext(draftId, photoId)));
  }

  async function photoBlob(draftId, photoId) {
    const bytes = await photoBytes(draftId, photoId);
    return bytes ? new Blob([bytes], { type: "image/jpeg" }) : null;
  }

  function base64(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  }

  async function counts() {
    const records = await withStore("drafts", "readonly", (s) => request(s.getAll()));
    const out = { total: records.length, writing: 0, ready: 0, refused: 0 };
    for (const r of records) out[r.state] = (out[r.state] || 0) + 1;
    return out;
  }

  // ---------------------------------------------------------------- the child picker's caseload

  async function saveCaseload(caseload) {
    const sealed = await seal({ ...caseload, saved: new Date().toISOString() }, "seen:caseload");
    await withStore("meta", "readwrite", (s) => s.put(sealed, CASELOAD_ID));
  }

  async function loadCaseload() {
    const sealed = await withStore("meta", "readonly", (s) => request(s.get(CASELOAD_ID)));
    if (!sealed) return null;
    try {
      return await unseal(sealed, "seen:caseload");
    } catch (e) {
      return null;
    }
  }

  async function refreshCaseload() {
    const response = await fetch("/api/offline/caseload", { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return null;
    const caseload = await response.json();
    await saveCaseload(caseload);
    return caseload;
  }

  // ---------------------------------------------------------------- sending home

  async function sendOne(draft) {
    const photos = [];
    for (const photo of draft.photos || []) {
      const bytes = await photoBytes(draft.id, photo.id);
      if (bytes) photos.push({ id: photo.id, data: base64(bytes) });
      else console.error("Seen: a photo of this draft is missing from the phone", draft.id, photo.id);
    }
    const response = await fetch("/api/offline/drafts", {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ idempotency_key: draft.id, kind: draft.kind, child_id: draft.childId,
                             fields: draft.fields, worker_id: draft.workerId || null, photos }),
    });
    let answer = {};
    try {
      answer = await response.json();
    } catch (e) {
      answer = {};
    }
    return { status: response.status, answer };
  }

  async function sendReadyNow() {
    // While the child has the phone (pwa/static/seen-child-guard.js) only their statement and flag are sent: Seen
    // keeps the worker's own back until the worker has the phone again.
    const childHas = root.SeenChildGuard && root.SeenChildGuard.held();
    const drafts = (await listDrafts()).filter((d) => d.state === "ready" && (!childHas || CHILD_KINDS.has(d.kind)));
    const result = { sent: 0, kept: drafts.length, problem: "" };
    for (const draft of drafts) {
      let reply;
      try {
        reply = await sendOne(draft);
      } catch (e) {
        result.problem = "offline"; // the connection went: try again when it is back
        break;
      }
      if (reply.status === 200) {
        await deleteDraft(draft.id); // acknowledged: only now does the phone let go of it
        result.sent += 1;
        result.kept -= 1;
      } else if (reply.status === 401) {
        result.problem = "signin";
        break;
      } else if (reply.status === 423) {
        result.problem = "child-mode"; // the child has the phone: the worker's drafts wait until it is theirs again
      } else if (reply.status === 409) {
        result.problem = "other-worker"; // written by someone else on this phone: wait for them
      } else if (reply.status === 422 || reply.status === 403 || reply.status === 413) {
        draft.state = "refused";
        draft.message = reply.answer.message || "Seen could not accept this record.";
        draft.problems = reply.answer.problems || {};
        await saveDraft(draft);
      } else {
        result.problem = "server";
        break;
      }
    }
    lastProblem = result.problem;
    return result;
  }

  const HELD_CHECK_MS = 30000;
  let heldCheckedAt = 0;

  async function forgetWhatSeenHolds(force = false) {
    // A copy whose key Seen already holds is stale (sent from another tab, or the same form submitted on the
    // screen under its own key): the phone lets it go. Ready drafts need not ask: sending one is the answer.
    if (!force && Date.now() - heldCheckedAt < HELD_CHECK_MS) return 0;
    heldCheckedAt = Date.now();
    const drafts = (await listDrafts()).filter((d) => d.state !== "ready");
    if (!drafts.length) return 0;
    let held;
    try {
      const response = await fetch("/api/offline/held", {
        method: "POST", credentials: "same-origin", cache: "no-store", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ keys: drafts.map((d) => d.id) }),
      });
      if (!response.ok) return 0;
      held = new Set((await response.json()).held || []);
    } catch (e) {
      return 0; // no connection: asked again later
    }
    let forgotten = 0;
    for (const draft of drafts.filter((d) => held.has(d.id))) {
      await deleteDraft(draft.id);
      forgotten += 1;
    }
    return forgotten;
  }

  async function sendReady() {
    if (sending) return { sent: 0, kept: -1, problem: "busy" };
    sending = true;
    changed();
    try {
      // One sender at a time across tabs and the service worker; the server's key makes it safe anyway.
      if (root.navigator && root.navigator.locks) {
        return await root.navigator.locks.request("seen-send-drafts", sendReadyNow);
      }
      return await sendReadyNow();
    } finally {
      sending = false;
      changed();
    }
  }

  async function askForBackgroundSend() {
    try {
      const registration = await root.navigator.serviceWorker.ready;
      if (registration.sync) await registration.sync.register("seen-drafts");
    } catch (e) {
      /* Background Sync is a bonus: the pages send when they are open and online anyway. */
    }
  }

  // ---------------------------------------------------------------- status

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  async function statusText(online) {
    const c = await counts();
    if (!online) return c.total ? "Offline · " + plural(c.total, "draft") + " waiting" : "Offline";
    if (!c.total) return "Online";
    if (c.refused && !c.ready) return "Online · " + c.refused + " to fix";
    if (sending && c.ready) return "Online · sending " + plural(c.ready, "draft");
    if (lastProblem === "signin" && c.ready) return "Sign in to send " + plural(c.ready, "draft");
    return "Online · " + plural(c.total, "draft") + " waiting";
  }

  function changed() {
    for (const fn of listeners) fn();
    if (channel) channel.postMessage("changed");
  }

  function onChange(fn) {
    listeners.add(fn);
  }

  if (channel) channel.onmessage = () => listeners.forEach((fn) => fn());

  root.SeenDrafts = {
    newDraft, saveDraft, getDraft, listDrafts, deleteDraft, counts,
    preparePhoto, addPhoto, removePhoto, photoBlob, PhotoProblem,
    saveCaseload, loadCaseload, refreshCaseload,
    sendReady, forgetWhatSeenHolds, askForBackgroundSend, statusText, onChange,
    get sending() { return sending; },
    get lastProblem() { return lastProblem; },
  };
})(self);
