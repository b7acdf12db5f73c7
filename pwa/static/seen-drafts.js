/* Seen's offline store: drafts and the child picker's caseload, sealed in IndexedDB, and sending home.
 *
 * Everything a worker typed is sealed with AES-GCM under one key made in this browser by WebCrypto as
 * NON-EXTRACTABLE: the key is stored in IndexedDB as a CryptoKey object, so script can use it but never
 * read its bytes, and the database on disk holds only ciphertext. Only a draft's id (its idempotency key),
 * its state and when it changed are kept in clear.
 *
 * A draft is "writing" while the worker types, "ready" once they press submit, "refused" if the server
 * said what to fix. Ready drafts are POSTed to /api/offline/drafts with their id as idempotency key and
 * removed only after the server acknowledges them, so a send cut off half way is simply sent again and
 * the server stores it once.
 *
 * Loaded by NiceGUI pages, the offline page and the service worker: it uses `self`, not `window`.
 */
(function (root) {
  "use strict";
  const DB_NAME = "seen-offline";
  const DB_VERSION = 1;
  const KEY_ID = "drafts-key";
  const CASELOAD_ID = "caseload";
  const channel = "BroadcastChannel" in root ? new BroadcastChannel("seen-drafts") : null;
  const listeners = new Set();
  let dbPromise = null;
  let keyPromise = null;
  let sending = false;
  let lastProblem = "";

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
        req.onupgradeneeded = () => {
          const db = req.result;
          db.createObjectStore("keys");
          db.createObjectStore("drafts", { keyPath: "id" });
          db.createObjectStore("meta");
        };
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    }
    return dbPromise;
  }

  async function withStore(name, mode, fn) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(name, mode);
      let result;
      Promise.resolve(fn(tx.objectStore(name))).then((r) => (result = r), reject);
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
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: sealed.iv, additionalData: encoder.encode(context) },
      await cryptoKey(),
      sealed.data,
    );
    return JSON.parse(decoder.decode(plain));
  }

  // ---------------------------------------------------------------- drafts

  function newDraft({ kind = "visit", childId, childLabel = "", fields = {}, source = "offline", pageId = "", workerId = "" }) {
    const now = new Date().toISOString();
    return { id: crypto.randomUUID(), kind, childId, childLabel, fields, source, pageId, workerId,
             state: "writing", created: now, updated: now, problems: {}, message: "" };
  }

  async function saveDraft(draft) {
    draft.updated = new Date().toISOString();
    const { id, state, updated, ...content } = draft;
    const sealed = await seal(content, "seen:draft:" + id);
    await withStore("drafts", "readwrite", (s) => s.put({ id, state, updated, sealed }));
    changed();
    return draft;
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

  async function deleteDraft(id) {
    await withStore("drafts", "readwrite", (s) => s.delete(id));
    changed();
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
    const response = await fetch("/api/offline/drafts", {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ idempotency_key: draft.id, kind: draft.kind, child_id: draft.childId,
                             fields: draft.fields, worker_id: draft.workerId || null }),
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
    const drafts = (await listDrafts()).filter((d) => d.state === "ready");
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
      } else if (reply.status === 409) {
        result.problem = "other-worker"; // written by someone else on this phone: wait for them
      } else if (reply.status === 422 || reply.status === 403) {
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
    saveCaseload, loadCaseload, refreshCaseload,
    sendReady, askForBackgroundSend, statusText, onChange,
    get sending() { return sending; },
    get lastProblem() { return lastProblem; },
  };
})(self);
