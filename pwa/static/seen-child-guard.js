/* Child mode on this phone (pwa/pages/child_mode.py), the browser's half.
 *
 * The mark: while the child holds the phone, localStorage "seen-child-mode" is "1" and "seen-child-draft" names
 * the child's statement draft. The child's screen sets them; every worker screen (pwa/layout.py's frame),
 * reached only once the worker has taken the phone back, clears them. With the mark, the offline page shows the
 * child's screens (pwa/static/seen-child-offline.js), never the worker's drafts or caseload.
 *
 * On the child's screen (online), everything the child enters is kept as it is entered, in the browser, sealed
 * like a draft (SeenDrafts): the statement as a draft of kind "child_statement" whose id is the submission key
 * made when child mode opened, each drawing's photo sealed with it, and "I don't feel safe" as a ready draft of
 * kind "safeguarding_flag" under its own key (sent at once, stored once whichever way it arrives). If the signal
 * goes, the screen hands over to the offline child screens with all of it, on the step the child was on.
 */
(() => {
  "use strict";
  const KEY = "seen-child-mode";
  const DRAFT = "seen-child-draft";
  const CHILD_KINDS = new Set(["child_statement", "safeguarding_flag"]);
  const held = () => {
    try { return localStorage.getItem(KEY) === "1"; } catch (e) { return false; }
  };
  const draftId = () => {
    try { return localStorage.getItem(DRAFT) || ""; } catch (e) { return ""; }
  };
  const Drafts = self.SeenDrafts;
  let draft = null;
  let saving = Promise.resolve();

  function keep(change) {
    // One change after another, each sealed in its turn: the last word typed is the one kept.
    saving = saving.then(async () => {
      if (!draft) return;
      await change(draft);
      await Drafts.saveDraft(draft);
    }).catch((e) => console.error("Seen: the child's answer could not be kept on the phone", e));
    return saving;
  }

  function drawingHouses(d) {
    // The houses in the order of the photos the draft sends: the server pairs them up in that order.
    const byPhoto = Object.fromEntries(Object.entries(d.child.drawings || {}).map(([house, id]) => [id, house]));
    return (d.photos || []).map((p) => byPhoto[p.id]).filter(Boolean);
  }

  async function startDraft(session) {
    // The statement's draft, made once when child mode opens (its id the submission key), then reused.
    const found = await Drafts.getDraft(session.statement_key);
    if (found) return found;
    const fields = { feeling_home: "", feeling_school: "", feeling_contact: "", good_things: "", worries: "", hopes: "",
                     tell_worker: "", tell_iro: "", tell_judge: "", language: session.language, unsafe: "",
                     drawing_houses: [] };
    const made = Drafts.newDraft({ id: session.statement_key, kind: "child_statement", childId: session.child_id,
                                   fields, source: "child", workerId: session.worker_id });
    made.child = { language: session.language, unsafeKey: session.unsafe_key, pin: session.pin, pinTries: 0,
                   step: 0, drawings: {} };
    await Drafts.saveDraft(made);
    return made;
  }

  async function notSafe(d) {
    // The flag goes as its own ready draft: sent the moment there is a signal, whatever the child does next.
    d.fields.unsafe = "1";
    d.child.unsafeSaid = true;
    if (!(await Drafts.getDraft(d.child.unsafeKey))) {
      const flag = Drafts.newDraft({ id: d.child.unsafeKey, kind: "safeguarding_flag", childId: d.childId, fields: {},
                                     source: "child", workerId: d.workerId });
      flag.state = "ready";
      await Drafts.saveDraft(flag);
    }
  }

  async function keepDrawing(d, house, file) {
    const { blob, width, height } = await Drafts.preparePhoto(file);
    const before = (d.child.drawings || {})[house];
    if (before) await Drafts.removePhoto(d, before);
    const photo = await Drafts.addPhoto(d, blob, { width, height });
    d.child.drawings = { ...(d.child.drawings || {}), [house]: photo.id };
    d.fields.drawing_houses = drawingHouses(d);
  }

  function onScreen() {
    // The online child's screen: its answers into the sealed draft as they are given.
    document.addEventListener("click", (event) => {
      const face = event.target.closest && event.target.closest("[data-child-value]");
      if (face) keep((d) => { d.fields[face.dataset.childField] = face.dataset.childValue; });
      if (event.target.closest && event.target.closest("[data-child-unsafe]")) keep(notSafe);
    }, true);
    document.addEventListener("input", (event) => {
      const box = event.target.closest && event.target.closest("[data-child-field]");
      if (box && "value" in event.target) keep((d) => { d.fields[box.dataset.childField] = event.target.value; });
    }, true);
    document.addEventListener("change", (event) => {
      const input = event.target;
      const where = input.closest && input.closest("[data-child-drawing]");
      if (!where || input.type !== "file" || !input.files || !input.files.length) return;
      const file = input.files[0];
      keep((d) => keepDrawing(d, where.dataset.childDrawing, file).catch(() => {}));
    }, true);
    let connected = false;
    const handOver = async () => {
      // The signal went: the offline child screens take over, on this step, with everything so far.
      const step = document.querySelector("[data-child-step]");
      const steps = ["feelings", "houses", "tell", "done"];
      await keep((d) => { d.child.step = Math.max(0, steps.indexOf(step ? step.dataset.childStep : "feelings")); });
      location.assign("/offline");
    };
    // A socket closed because the page is being left (the worker took the phone back) is not a lost signal.
    let leaving = false;
    let goneFor = 0;
    window.addEventListener("beforeunload", () => (leaving = true));
    setInterval(() => {
      const up = Boolean(window.socket && window.socket.connected);
      connected = connected || up;
      goneFor = !navigator.onLine || (connected && !up) ? goneFor + 1 : 0;
      if (goneFor >= 2 && !leaving && draft && "serviceWorker" in navigator && navigator.serviceWorker.controller) {
        leaving = true;
        handOver();
      }
    }, 400);
  }

  async function start() {
    const el = document.getElementById("seen-child-session");
    if (el && Drafts) {
      const session = JSON.parse(el.textContent);
      draft = await startDraft(session);
      localStorage.setItem(KEY, "1");
      localStorage.setItem(DRAFT, draft.id);
      onScreen();
    } else if (!held() && Drafts && document.getElementById("seen-connection")) {
      // A worker screen: what a child began and the worker ended online (unsent, as on the screen) is let go.
      for (const d of await Drafts.listDrafts()) {
        if (d.kind === "child_statement" && d.state === "writing") await Drafts.deleteDraft(d.id);
      }
    }
  }

  async function sent() {
    // The screen stored the statement: the phone's copy is let go.
    await saving;
    if (draft) await Drafts.deleteDraft(draft.id);
    draft = null;
  }

  self.SeenChildGuard = { KEY, DRAFT, CHILD_KINDS, held, draftId, drawingHouses, notSafe, keepDrawing, sent,
                          ready: typeof document !== "undefined" ? start() : Promise.resolve() };
})();
