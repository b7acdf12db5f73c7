/* The offline page: finish a draft kept on this phone, or write a visit from scratch, with no connection.
 *
 * Plain DOM, no NiceGUI (NiceGUI needs its server). The forms are built from the schema the server put
 * in the page (#seen-offline-schema), so field names and code lists are the app's own. Every keystroke and
 * tap is kept sealed in IndexedDB (SeenDrafts) at once, not later: the note under the heading (#saved, its
 * `data-saved` counting the edits kept) says when the phone holds it. "Submit" marks the draft ready (a
 * second tap sends nothing new), and ready drafts go home as soon as Seen answers again, each removed from
 * the phone only once Seen has acknowledged it. A draft Seen refused says why, field by field.
 *
 * /offline?draft=ID opens that draft: a form page hands its form over this way when its signal goes
 * (pwa/static/seen-page.js), and the banner for a refused draft links here. A reload reopens it.
 *
 * A kind whose schema has "photos" (a life-story entry) shows the photos kept with the draft as thumbnails,
 * each with a Remove button, and takes more from the camera or the phone's pictures, made small and sealed
 * before they are kept, within the server's limits (how many, how big).
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
  // Object URLs of the opened photos on screen, in the list of drafts and in the editor, each let go when
  // its part of the page is drawn again.
  const thumbnails = { list: [], editor: [] };
  let photoMessage = ""; // why a photo just picked was not kept
  // Submitted drafts seen on this page: once one is gone, Seen has acknowledged it (only that removes a
  // submitted draft), whoever sent it: this page, another tab, or the service worker's background sync.
  const submitted = new Set();
  const asked = new URLSearchParams(location.search);
  let saves = 0; // edits kept in the sealed copy since this page opened
  let keeping = 0; // saves under way
  let submitting = false;

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

  function localToday() {
    const now = new Date();
    const pad = (n) => String(n).padStart(2, "0");
    return now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate());
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

  function thumbnailUrl(blob, where) {
    const url = URL.createObjectURL(blob);
    thumbnails[where].push(url);
    return url;
  }

  function letGoOfThumbnails(where) {
    thumbnails[where].forEach((url) => URL.revokeObjectURL(url));
    thumbnails[where] = [];
  }

  function cardPhotos(draft, opened) {
    const photos = draft.photos || [];
    if (!photos.length) return null;
    const row = el("div", { class: "thumbs", "data-photos": photos.length },
      el("span", { class: "muted", text: photos.length === 1 ? "1 photo" : photos.length + " photos" }));
    for (const [i, photo] of photos.entries()) {
      const blob = opened.get(photo.id);
      if (blob) row.append(el("img", { src: thumbnailUrl(blob, "list"), alt: "Photo " + (i + 1) + " of this draft", class: "thumb" }));
    }
    return row;
  }

  async function renderDrafts() {
    const list = $("drafts");
    // A child's statement and flag (child mode) are theirs: they are sent with the rest, never listed here.
    const drafts = (await Drafts.listDrafts()).filter((d) => !(window.SeenChildGuard && SeenChildGuard.CHILD_KINDS.has(d.kind)));
    // Everything is opened before the list is touched: two renders at once must not mix their cards.
    const opened = new Map();
    for (const draft of drafts) {
      for (const photo of draft.photos || []) opened.set(photo.id, await Drafts.photoBlob(draft.id, photo.id));
    }
    letGoOfThumbnails("list");
    const ready = new Set(drafts.filter((d) => d.state === "ready").map((d) => d.id));
    const gone = [...submitted].filter((id) => !ready.has(id) && !drafts.some((d) => d.id === id));
    if (gone.length) lastSent = gone.length === 1 ? "1 record sent to Seen and stored." : gone.length + " records sent to Seen and stored.";
    // A draft that came back refused is not on its way: "Submitted…" would say it was.
    if (drafts.some((d) => d.state === "refused" && submitted.has(d.id))) lastSent = "";
    submitted.clear();
    ready.forEach((id) => submitted.add(id));
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
        cardPhotos(draft, opened),
        el("button", { type: "button", text: "Open", "aria-label": "Open draft: " + kindTitle(draft.kind) + " for " + who,
                       onclick: () => openEditor(draft.id) }));
      list.append(card);
    }
  }

  // ---------------------------------------------------------------- the editor

  function fieldInput(field, value, problems) {
    const id = "f-" + field.name;
    const problem = problems[field.name] ? el("p", { class: "problem", id: id + "-problem", text: problems[field.name] }) : null;
    const hint = field.hint ? el("p", { class: "muted", id: id + "-hint", text: field.hint }) : null;
    const described = [hint && id + "-hint", problem && id + "-problem"].filter(Boolean).join(" ") || null;
    if (field.only_when_asked && !problem && !value) return el("span", { hidden: true }); // e.g. confirming a date
    if (field.type === "note" || field.type === "hidden") {
      // Not typed here: what a correction begun on the screen replaces travels with the draft as it was.
      const note = field.type === "note" && value ? el("p", { class: "note", "data-note": field.name, text: field.label }) : null;
      return note || problem ? el("div", { id }, note || "", problem || "") : el("span", { hidden: true });
    }
    if (field.type === "yesno") {
      const set = el("fieldset", { id, "data-name": field.name, "aria-describedby": described }, el("legend", { text: field.label }), hint);
      for (const [code, word] of [["yes", "Yes"], ["no", "No"]]) {
        set.append(el("label", {}, el("input", { type: "radio", name: field.name, value: code, checked: value === code || value === true && code === "yes" || value === false && code === "no" }), word));
      }
      return el("div", {}, set, problem);
    }
    if (field.type === "rows") {
      const rows = Array.isArray(value) && value.length ? value : [];
      const box = el("fieldset", { id, "data-name": field.name, "data-rows": "1", "aria-describedby": described },
        el("legend", { text: field.label }), hint);
      const body = el("div", {});
      const addRow = (row = {}) => {
        const n = body.children.length + 1;
        const line = el("div", { class: "row card", "data-row": "1" });
        for (const [col, word, kind, low, high] of field.columns) {
          const value = row[col] === undefined || row[col] === null ? "" : String(row[col]);
          if (kind === "hidden") {  // carried with the row, not typed (a safety goal's id)
            line.append(el("input", { type: "hidden", "data-col": col, value }));
            continue;
          }
          let input;
          if (kind === "longtext") {
            input = el("textarea", { "data-col": col });
            input.value = value;
          } else {
            input = el("input", { type: kind === "date" || kind === "number" ? kind : "text", "data-col": col,
                                  min: low == null ? null : String(low), max: high == null ? null : String(high),
                                  step: kind === "number" ? "1" : null, value });
          }
          line.append(el("label", {}, word + " (" + n + ")", input));
        }
        line.append(el("button", { type: "button", text: "Remove", onclick: () => { line.remove(); saveNow(); } }));
        body.append(line);
      };
      rows.forEach(addRow);
      box.append(body, el("button", { type: "button", text: "Add " + (field.row_word || "a row"), onclick: () => addRow() }));
      if (problem) box.append(problem);
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
                            // A record's date has happened: the picker offers no future day.
                            max: field.type === "date" ? localToday() : null,
                            value: value === undefined || value === null ? "" : String(value) });
    }
    return el("div", {}, label, hint, input, problem);
  }

  function fieldBlock(field, value, problems) {
    // A field the form asks only after another answer ("If not alone, why not") shows and hides with it.
    const block = el("div", { "data-block": field.name, "data-when": field.when ? JSON.stringify(field.when) : null },
      field.section ? el("h3", { text: field.section }) : null, fieldInput(field, value, problems));
    return block;
  }

  function answerOf(form, name) {
    const picked = form.querySelector(`input[name="${name}"]:checked`);
    if (picked) return picked.value;
    const input = form.querySelector(`[name="${name}"]:not([type=radio])`);
    return input ? input.value : "";
  }

  function showAsked() {
    // Asked only when each named answer is given, and the field it hangs on is itself asked.
    const form = $("draft-form");
    const shown = (block) => {
      if (!block || !block.dataset.when) return true;
      return Object.entries(JSON.parse(block.dataset.when)).every(([name, wanted]) =>
        answerOf(form, name) === wanted && shown(form.querySelector(`[data-block="${name}"]`)));
    };
    for (const block of form.querySelectorAll("[data-when]")) block.hidden = !shown(block);
  }

  function errorSummary(problems) {
    // GOV.UK's error summary, as the screens show it (pwa/error_summary.py): each problem a link to its field.
    const entries = Object.entries(problems || {}).filter(([, message]) => message);
    if (!entries.length) return null;
    const list = el("ul", {});
    for (const [name, message] of entries) {
      const target = name === "photo" ? "photos" : "f-" + name;
      list.append(el("li", {}, el("a", { href: "#" + target, "data-problem": name, text: message })));
    }
    return el("div", { class: "seen-error-summary", id: "error-summary", role: "alert", tabindex: "-1" },
      el("h2", { text: "There is a problem" }), list);
  }

  function followProblem(event) {
    // A link in the summary puts focus in its field (the first control in it), in view.
    const link = event.target.closest(".seen-error-summary a[href^='#']");
    if (!link) return;
    const target = document.getElementById(link.hash.slice(1));
    if (!target) return;
    event.preventDefault();
    const controls = "input:not([type=hidden]):not([hidden]), textarea, select, button";
    const field = target.matches(controls) ? target : target.querySelector(controls) || target;
    if (field === target && !target.matches(controls)) target.setAttribute("tabindex", "-1");
    field.focus({ preventScroll: true });
    target.scrollIntoView({ block: "start" });
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

  async function openEditor(id, kind = "visit") {
    // A draft on the phone by its id, or (id null) a new record of `kind` from scratch.
    const draft = id ? await Drafts.getDraft(id) : null;
    if (id && !draft) return renderDrafts();
    if (draft && draft.state === "ready") {
      draft.state = "writing"; // not sent while it is being changed; "Submit" makes it ready again
      await Drafts.saveDraft(draft);
    }
    editing = draft || Drafts.newDraft({ kind, childId: "", fields: { ...(SCHEMA[kind].defaults || {}), ...nowFields(kind) },
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
      form.append(el("p", { class: "problem", text: "Your caseload is not saved on this phone yet. Open Seen's caseload once while you have a signal, then you can start visits and life-story entries offline." }));
    }
    const summary = errorSummary(editing.problems);
    if (summary) form.prepend(summary);
    for (const field of schemaFields(editing)) form.append(fieldBlock(field, editing.fields[field.name], editing.problems || {}));
    showAsked();
    photoMessage = "";
    letGoOfThumbnails("editor");
    if (SCHEMA[editing.kind] && SCHEMA[editing.kind].photos) form.append(await photoSection(editing));
    form.append(el("div", {},
      el("button", { type: "submit", class: "primary", text: "Submit " + kindTitle(editing.kind).toLowerCase() }),
      el("button", { type: "button", text: "Keep as draft", onclick: closeEditor }),
      el("button", { type: "button", text: "Delete draft", onclick: deleteEditing })));
    const message = $("editor-message");
    // Seen's words for a refused draft, unless the summary lists them field by field.
    message.hidden = !editing.message || Boolean(summary);
    message.textContent = summary ? "" : editing.message || "";
    showNotice();
    showSaved();
    $("editor-heading").textContent = kindTitle(editing.kind) + (editing.childLabel ? " · " + editing.childLabel : "");
    $("editor").hidden = false;
    $("drafts-section").hidden = true;
    $("intro").hidden = true;
    $("back-online").hidden = true;
    (summary || $("editor-heading")).focus();
    if (!id) {
      await Drafts.saveDraft(editing);
      await renderDrafts(); // the list above shows the new draft too
    }
  }

  // ---------------------------------------------------------------- photos kept with the draft

  async function photoSection(draft) {
    const limits = SCHEMA[draft.kind].photos;
    const photos = draft.photos || [];
    const problem = photoMessage || (draft.problems || {}).photo || "";
    const box = el("fieldset", { id: "photos", "aria-describedby": problem ? "photos-problem" : null },
      el("legend", { text: "Photos" }));
    const list = el("div", { class: "photos" });
    for (const [i, photo] of photos.entries()) {
      const n = i + 1;
      const blob = await Drafts.photoBlob(draft.id, photo.id);
      list.append(el("figure", { class: "photo", "data-photo": photo.id },
        blob ? el("img", { src: thumbnailUrl(blob, "editor"), alt: "Photo " + n + " of " + photos.length })
          : el("p", { class: "problem", text: "Photo " + n + " could not be opened on this phone." }),
        el("button", { type: "button", text: "Remove", "aria-label": "Remove photo " + n,
                       onclick: () => removeEditingPhoto(photo.id) })));
    }
    box.append(list);
    box.append(el("p", { class: "muted", text: photos.length
      ? "Kept sealed on this phone, and sent with the entry."
      : "No photos yet. Photos are kept sealed on this phone and sent with the entry." }));
    if (problem) box.append(el("p", { class: "problem", id: "photos-problem", role: "alert", text: problem }));
    if (photos.length < limits.max) {
      for (const [word, camera] of [["Take a photo", true], ["Choose photos", false]]) {
        const input = el("input", { type: "file", accept: "image/*", hidden: true, tabindex: "-1",
                                    capture: camera ? "environment" : null, multiple: !camera,
                                    "data-pick": camera ? "camera" : "library" });
        input.addEventListener("change", (event) => {
          event.stopPropagation(); // not a field of the form: the words' save need not run
          addEditingPhotos([...input.files]);
        });
        box.append(input, el("button", { type: "button", text: word, onclick: () => input.click() }));
      }
    } else {
      box.append(el("p", { class: "muted", text: "This entry holds " + limits.max + " photos, as many as an entry can." }));
    }
    return box;
  }

  async function redrawPhotos(focus) {
    const old = $("photos");
    if (!old || !editing) return;
    letGoOfThumbnails("editor");
    const fresh = await photoSection(editing);
    old.replaceWith(fresh);
    const target = focus && (fresh.querySelector(focus) || fresh.querySelector("button"));
    if (target) target.focus();
  }

  async function addEditingPhotos(files) {
    if (!editing || !files.length) return;
    const limits = SCHEMA[editing.kind].photos;
    await keepNow(); // the words as they are, before the photos join them
    photoMessage = "";
    for (const file of files) {
      const photos = editing.photos || [];
      if (photos.length >= limits.max) {
        photoMessage = "An entry can hold up to " + limits.max + " photos. Put the rest in another entry.";
        break;
      }
      try {
        const { blob, width, height } = await Drafts.preparePhoto(file, limits);
        if (photos.reduce((sum, p) => sum + p.size, 0) + blob.size > limits.max_total_bytes) {
          photoMessage = "This entry's photos are as big as one entry can send. Put this photo in another entry.";
          break;
        }
        await Drafts.addPhoto(editing, blob, { width, height });
      } catch (e) {
        if (!(e instanceof Drafts.PhotoProblem)) throw e;
        photoMessage = e.message;
      }
    }
    await redrawPhotos(photoMessage ? "#photos-problem" : null);
  }

  async function removeEditingPhoto(photoId) {
    if (!editing) return;
    if (!confirm("Remove this photo from the entry? It has not been sent to Seen, and is deleted from this phone.")) return;
    await keepNow();
    await Drafts.removePhoto(editing, photoId);
    if (editing.problems && editing.problems.photo) {
      // What Seen said about the photos may no longer hold: it says again when the entry is sent.
      delete editing.problems.photo;
      await Drafts.saveDraft(editing);
    }
    photoMessage = "";
    await redrawPhotos("button");
  }

  function nowFields(kind) {
    // A new record is dated now: a visit's date and time, another kind's date fields.
    const now = new Date();
    const pad = (n) => String(n).padStart(2, "0");
    const today = now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate());
    if (kind === "visit") return { visit_date: today, visit_time: pad(now.getHours()) + ":" + pad(now.getMinutes()) };
    return Object.fromEntries(SCHEMA[kind].fields.filter((f) => f.type === "date" && !f.only_when_asked).map((f) => [f.name, today]));
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

  function showSaved() {
    const note = $("saved");
    note.dataset.saved = String(saves);
    note.dataset.state = keeping ? "saving" : "saved";
    // Short, and one line either way: nothing under it moves while the worker taps.
    note.textContent = keeping ? "Keeping it on this phone…" : "Kept sealed on this phone.";
  }

  function keep(draft) {
    // Every edit at once, in order (SeenDrafts seals one at a time): a reload straight after a tap keeps it.
    keeping += 1;
    showSaved();
    return Drafts.saveDraft(draft).then(() => { saves += 1; }).finally(() => { keeping -= 1; showSaved(); });
  }

  function saveNow() {
    if (editing) keep(readForm());
  }

  async function keepNow() {
    if (editing) await keep(readForm());
  }

  function showNotice() {
    // A form handed over from its page when the signal went: say plainly where it is and what happens next.
    // Said as the editor opens, and left as it is: words changing above the form would move it under a tap.
    const notice = $("editor-notice");
    const handed = editing && editing.source === "form" && editing.state !== "refused";
    notice.hidden = !handed;
    if (!handed) return;
    const what = "This " + ((SCHEMA[editing.kind] || {}).noun || "record");
    notice.textContent = reachable
      ? "The signal is back. " + what + " is kept on this phone: submit it here and it is sent at once."
      : "No signal. " + what + " is kept on this phone, with everything entered so far, and will be sent when " +
        "the signal returns. Carry on here and submit it.";
  }

  function leaveDraftUrl() {
    // A reload after this shows the list, not the draft just closed.
    if (asked.has("draft")) history.replaceState(null, "", "/offline");
    asked.delete("draft");
  }

  async function closeEditor() {
    await keepNow();
    editing = null;
    leaveDraftUrl();
    letGoOfThumbnails("editor");
    $("editor").hidden = true;
    $("drafts-section").hidden = false;
    showStatus();
    await renderDrafts();
    $("drafts-heading").scrollIntoView();
  }

  async function deleteEditing() {
    if (!editing) return;
    if (!confirm("Delete this draft from the phone? What it holds has not been sent to Seen.")) return;
    await Drafts.deleteDraft(editing.id);
    editing = null;
    leaveDraftUrl();
    $("editor").hidden = true;
    $("drafts-section").hidden = false;
    showStatus();
    await renderDrafts();
  }

  async function submitEditing(event) {
    event.preventDefault();
    if (!editing || submitting) return; // a second tap on Submit sends nothing new
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
    submitting = true;
    try {
      await keep(draft);
    } finally {
      submitting = false;
    }
    editing = null;
    leaveDraftUrl();
    $("editor").hidden = true;
    $("drafts-section").hidden = false;
    showStatus();
    lastSent = "Submitted. It will be sent to Seen as soon as there is a connection.";
    await renderDrafts();
    Drafts.askForBackgroundSend();
    nextTry = 0;
    loop();
  }

  async function openAsked(id) {
    // A draft named in the address: opened to carry on, unless it is already on its way (then the list says so).
    const draft = await Drafts.getDraft(id);
    if (draft && draft.state !== "ready") return openEditor(id);
    leaveDraftUrl();
    if (draft) {
      lastSent = "Submitted. It will be sent to Seen as soon as there is a connection.";
      await renderDrafts();
    }
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
    // While a draft is open the editor is all there is below the header, so nothing above it moves.
    $("back-online").hidden = !reachable || Boolean(editing);
    $("intro").hidden = reachable || Boolean(editing);
  }

  let looping = false;
  async function loop() {
    if (looping) return;
    looping = true;
    try {
      await probe();
      const counts = await Drafts.counts();
      if (reachable && counts.total > counts.ready && (await Drafts.forgetWhatSeenHolds())) await renderDrafts();
      if (reachable && counts.ready && Date.now() >= nextTry) {
        const result = await Drafts.sendReady();
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
    if (window.SeenChildGuard && window.SeenChildGuard.held()) return;  // the child has the phone: nothing here
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/sw.js", { scope: "/", updateViaCache: "none" }).catch(() => {});
      navigator.serviceWorker.ready.then((registration) => {
        if (!navigator.serviceWorker.controller && registration.active) registration.active.postMessage({ type: "seen-claim" });
      });
    }
    // Shown in place of a page that could not load: "Return" reloads that page, not the caseload.
    if (location.pathname !== "/offline") $("return").href = location.pathname + location.search;
    $("new-visit").addEventListener("click", () => openEditor(null, "visit"));
    $("new-life-story").addEventListener("click", () => openEditor(null, "life_story"));
    $("draft-form").addEventListener("input", saveNow);
    $("draft-form").addEventListener("change", saveNow);
    $("draft-form").addEventListener("change", showAsked);
    $("draft-form").addEventListener("click", followProblem);
    $("draft-form").addEventListener("submit", submitEditing);
    window.addEventListener("online", () => { nextTry = 0; loop(); });
    window.addEventListener("offline", loop);
    window.addEventListener("pagehide", keepNow);
    Drafts.onChange(() => { showStatus(); if (!editing) renderDrafts(); });
    renderDrafts();
    if (asked.get("draft")) openAsked(asked.get("draft"));
    loop();
    setInterval(loop, 2000);
  }

  window.SeenOffline = { keepNow, renderDrafts, loop };
  start();
})();
