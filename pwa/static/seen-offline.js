/* The offline page: finish a draft kept on this phone, or write a visit from scratch, with no connection.
 *
 * Plain DOM, no NiceGUI (NiceGUI needs its server). The forms are built from the schema the server put
 * in the page (#seen-offline-schema), so field names and code lists are the app's own. Every keystroke is
 * kept sealed in IndexedDB (SeenDrafts); "Submit" marks the draft ready, and ready drafts go home as soon
 * as Seen answers again, each removed from the phone only once Seen has acknowledged it.
 */
(function () {
  "use strict";
  const Drafts = window.SeenDrafts;
  const SCHEMA = JSON.parse(document.getElementById("seen-offline-schema").textContent);
  const STATE_WORDS = { writing: "Not submitted yet", ready: "Submitted: waiting to send", refused: "Needs changes before Seen can take it" };
  const $ = (id) => document.getElementById(id);
  let editing = null; // the draft open in the editor
  let reachable = false; // Seen answered the last time we asked
  let failures = 0;
  let nextTry = 0;
  let lastSent = "";

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function kindTitle(kind) {
    return (SCHEMA[kind] && SCHEMA[kind].title) || kind.replace(/_/g, " ");
  }

  async function childChoices() {
    const caseload = await Drafts.loadCaseload();
    return caseload ? caseload.children : [];
  }

  function childText(child) {
    return child.initials + (child.age !== null && child.age !== undefined ? " · " + child.age + " years" : "");
  }

  // ---------------------------------------------------------------- the list of drafts

  async function renderDrafts() {
    const list = $("drafts");
    const drafts = await Drafts.listDrafts();
    list.replaceChildren();
    if (lastSent) list.append(el("p", { role: "status", class: "muted", text: lastSent }));
    if (!drafts.length) {
      list.append(el("p", { class: "muted", text: "No drafts are waiting on this phone." }));
      return;
    }
    for (const draft of drafts) {
      const who = draft.childLabel || "no child chosen yet";
      const card = el("div", { class: "card", "data-draft": draft.id, "data-state": draft.state },
        el("strong", { text: kindTitle(draft.kind) + " · " + who }),
        el("div", { class: draft.state === "refused" ? "problem" : "muted", text: STATE_WORDS[draft.state] || draft.state }),
        draft.message ? el("div", { class: "problem", text: draft.message }) : null,
        el("div", { class: "muted", text: "Last changed " + new Date(draft.updated).toLocaleString("en-GB") }),
        el("button", { type: "button", text: "Open", "aria-label": "Open draft: " + kindTitle(draft.kind) + " for " + who,
                       onclick: () => openEditor(draft.id) }));
      list.append(card);
    }
  }

  // ---------------------------------------------------------------- the editor

  function fieldInput(field, value, problems) {
    const id = "f-" + field.name;
    const problem = problems[field.name] ? el("p", { class: "problem", id: id + "-problem", text: problems[field.name] }) : null;
    const described = problem ? id + "-problem" : null;
    if (field.type === "yesno") {
      const set = el("fieldset", { "data-name": field.name, "aria-describedby": described }, el("legend", { text: field.label }));
      for (const [code, word] of [["yes", "Yes"], ["no", "No"]]) {
        set.append(el("label", {}, el("input", { type: "radio", name: field.name, value: code, checked: value === code || value === true && code === "yes" || value === false && code === "no" }), word));
      }
      return el("div", {}, set, problem);
    }
    if (field.type === "rows") {
      const rows = Array.isArray(value) && value.length ? value : [];
      const box = el("fieldset", { "data-name": field.name, "data-rows": "1" }, el("legend", { text: field.label }));
      const body = el("div", {});
      const addRow = (row = {}) => {
        const n = body.children.length + 1;
        const line = el("div", { class: "row card", "data-row": "1" });
        for (const [col, word] of field.columns) {
          line.append(el("label", {}, word + " (" + n + ")",
            el("input", { type: col === "due" ? "date" : col === "score" ? "number" : "text", "data-col": col,
                          min: col === "score" ? "0" : null, max: col === "score" ? "10" : null,
                          value: row[col] === undefined || row[col] === null ? "" : String(row[col]) })));
        }
        line.append(el("button", { type: "button", text: "Remove", onclick: () => { line.remove(); saveSoon(); } }));
        body.append(line);
      };
      rows.forEach(addRow);
      box.append(body, el("button", { type: "button", text: "Add " + (field.row_word || "a row"), onclick: () => addRow() }), problem);
      return box;
    }
    const label = el("label", { for: id, text: field.label });
    let input;
    if (field.type === "select") {
      input = el("select", { id, name: field.name, "aria-describedby": described }, el("option", { value: "", text: "Choose…" }));
      for (const [code, word] of field.options) input.append(el("option", { value: code, text: word, selected: code === value }));
    } else if (field.type === "textarea") {
      input = el("textarea", { id, name: field.name, "aria-describedby": described });
      input.value = value === undefined || value === null ? "" : String(value);
    } else {
      input = el("input", { id, name: field.name, type: field.type || "text", "aria-describedby": described,
                            value: value === undefined || value === null ? "" : String(value) });
    }
    return el("div", {}, label, input, problem);
  }

  function schemaFields(draft) {
    const known = (SCHEMA[draft.kind] && SCHEMA[draft.kind].fields) || [];
    const names = new Set(known.map((f) => f.name));
    // A captured field the schema does not know is still shown, so nothing typed is hidden or lost.
    const extra = Object.keys(draft.fields || {}).filter((n) => !names.has(n))
      .map((n) => Array.isArray(draft.fields[n]) || (draft.fields[n] && typeof draft.fields[n] === "object")
        ? { name: n, label: n.replace(/_/g, " "), type: "json" }
        : { name: n, label: n.replace(/_/g, " "), type: "textarea" });
    return [...known, ...extra.filter((f) => f.type !== "json")];
  }

  async function openEditor(id) {
    const draft = id ? await Drafts.getDraft(id) : null;
    if (id && !draft) return renderDrafts();
    if (draft && draft.state === "ready") {
      draft.state = "writing"; // not sent while it is being changed; "Submit" makes it ready again
      await Drafts.saveDraft(draft);
    }
    editing = draft || Drafts.newDraft({ kind: "visit", childId: "", fields: { ...SCHEMA.visit.defaults, ...nowFields() },
                                         workerId: ((await Drafts.loadCaseload()) || {}).worker_id || "" });
    const form = $("draft-form");
    form.replaceChildren();
    const children = await childChoices();
    const picker = el("select", { id: "f-child", name: "child", required: true }, el("option", { value: "", text: "Choose the child…" }));
    let found = false;
    for (const child of children) {
      const selected = child.id === editing.childId;
      found = found || selected;
      picker.append(el("option", { value: child.id, text: childText(child), selected }));
    }
    if (editing.childId && !found) {
      picker.append(el("option", { value: editing.childId, text: editing.childLabel || "The child this draft was started for", selected: true }));
    }
    form.append(el("label", { for: "f-child", text: "Child" }), picker);
    if (!children.length && !editing.childId) {
      form.append(el("p", { class: "problem", text: "Your caseload is not saved on this phone yet. Open Seen's caseload once while you have a signal, then you can start visits offline." }));
    }
    for (const field of schemaFields(editing)) form.append(fieldInput(field, editing.fields[field.name], editing.problems || {}));
    form.append(el("div", {},
      el("button", { type: "submit", class: "primary", text: "Submit " + kindTitle(editing.kind).toLowerCase() }),
      el("button", { type: "button", text: "Keep as draft", onclick: closeEditor }),
      el("button", { type: "button", text: "Delete draft", onclick: deleteEditing })));
    const message = $("editor-message");
    message.hidden = !editing.message;
    message.textContent = editing.message || "";
    $("editor-heading").textContent = kindTitle(editing.kind) + (editing.childLabel ? " · " + editing.childLabel : "");
    $("editor").hidden = false;
    $("editor-heading").focus();
    if (!id) await Drafts.saveDraft(editing);
  }

  function nowFields() {
    const now = new Date();
    const pad = (n) => String(n).padStart(2, "0");
    return { visit_date: now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate()),
             visit_time: pad(now.getHours()) + ":" + pad(now.getMinutes()) };
  }

  function readForm() {
    const form = $("draft-form");
    const fields = { ...(editing.fields || {}) };
    for (const field of schemaFields(editing)) {
      if (field.type === "yesno") {
        const checked = form.querySelector(`input[name="${field.name}"]:checked`);
        fields[field.name] = checked ? checked.value : "";
      } else if (field.type === "rows") {
        fields[field.name] = [...form.querySelectorAll(`[data-name="${field.name}"] [data-row]`)].map((line) => {
          const row = {};
          for (const input of line.querySelectorAll("[data-col]")) row[input.dataset.col] = input.value;
          return row;
        });
      } else {
        const input = form.querySelector(`[name="${field.name}"]`);
        if (input) fields[field.name] = input.value;
      }
    }
    const picker = $("f-child");
    const option = picker.selectedOptions[0];
    editing.childId = picker.value;
    editing.childLabel = picker.value ? option.textContent.replace(" · ", ", ").replace(" years", "") : "";
    editing.fields = fields;
    return editing;
  }

  let saveTimer = null;
  function saveSoon() {
    if (!editing) return;
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => editing && Drafts.saveDraft(readForm()), 150);
  }

  async function keepNow() {
    clearTimeout(saveTimer);
    if (editing) await Drafts.saveDraft(readForm());
  }

  async function closeEditor() {
    await keepNow();
    editing = null;
    $("editor").hidden = true;
    await renderDrafts();
    $("drafts-heading").scrollIntoView();
  }

  async function deleteEditing() {
    if (!editing) return;
    if (!confirm("Delete this draft from the phone? What it holds has not been sent to Seen.")) return;
    await Drafts.deleteDraft(editing.id);
    editing = null;
    $("editor").hidden = true;
    await renderDrafts();
  }

  async function submitEditing(event) {
    event.preventDefault();
    const draft = readForm();
    const message = $("editor-message");
    if (!draft.childId) {
      message.textContent = "Choose the child this record is about.";
      message.hidden = false;
      $("f-child").focus();
      return;
    }
    draft.state = "ready";
    draft.message = "";
    draft.problems = {};
    clearTimeout(saveTimer);
    await Drafts.saveDraft(draft);
    editing = null;
    $("editor").hidden = true;
    lastSent = "Submitted. It will be sent to Seen as soon as there is a connection.";
    await renderDrafts();
    Drafts.askForBackgroundSend();
    nextTry = 0;
    loop();
  }

  // ---------------------------------------------------------------- connection and sending

  async function probe() {
    if (!navigator.onLine) return (reachable = false);
    try {
      const response = await fetch("/status", { cache: "no-store" });
      reachable = response.ok;
    } catch (e) {
      reachable = false;
    }
    return reachable;
  }

  async function showStatus() {
    $("seen-connection").textContent = await Drafts.statusText(reachable);
    $("seen-connection").dataset.state = reachable ? "online" : "offline";
    $("back-online").hidden = !reachable;
    $("intro").hidden = reachable;
  }

  let looping = false;
  async function loop() {
    if (looping) return;
    looping = true;
    try {
      await probe();
      const counts = await Drafts.counts();
      if (reachable && counts.ready && Date.now() >= nextTry) {
        const result = await Drafts.sendReady();
        if (result.sent) {
          lastSent = result.sent === 1 ? "1 record sent to Seen and stored." : result.sent + " records sent to Seen and stored.";
        }
        if (result.problem === "offline" || result.problem === "server") {
          failures += 1;
          nextTry = Date.now() + Math.min(60000, 1000 * 2 ** failures); // back off while the link flaps
        } else {
          failures = 0;
          nextTry = 0;
        }
        if (result.sent || result.problem) await renderDrafts();
        if (result.problem === "signin") {
          $("return").href = "/login?next=" + encodeURIComponent("/offline");
          $("return").textContent = "Sign in to send";
        }
      }
      await showStatus();
    } finally {
      looping = false;
    }
  }

  function start() {
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/sw.js", { scope: "/", updateViaCache: "none" }).catch(() => {});
      navigator.serviceWorker.ready.then((registration) => {
        if (!navigator.serviceWorker.controller && registration.active) registration.active.postMessage({ type: "seen-claim" });
      });
    }
    // Shown in place of a page that could not load: "Return" reloads that page, not the caseload.
    if (location.pathname !== "/offline") $("return").href = location.pathname + location.search;
    $("new-visit").addEventListener("click", () => openEditor(null));
    $("draft-form").addEventListener("input", saveSoon);
    $("draft-form").addEventListener("change", saveSoon);
    $("draft-form").addEventListener("submit", submitEditing);
    window.addEventListener("online", () => { nextTry = 0; loop(); });
    window.addEventListener("offline", loop);
    window.addEventListener("pagehide", keepNow);
    Drafts.onChange(() => { showStatus(); if (!editing) renderDrafts(); });
    renderDrafts();
    loop();
    setInterval(loop, 2000);
  }

  window.SeenOffline = { keepNow, renderDrafts, loop };
  start();
})();
