/* The child's screens with no signal: the offline page (served by the service worker) while the child has the
 * phone (pwa/static/seen-child-guard.js's mark).
 *
 * The same steps as the screen (pwa/pages/child_mode.py): the five faces for home, school and contact; the Three
 * Houses, each in words and a photo of a drawing; what the child wants their worker, IRO and the judge to know;
 * "I don't feel safe" on every step; read aloud by the browser's speech synthesis. The words are the child's
 * language, looked up in the catalogue the offline page carries (#seen-child-texts, made from the same .po files
 * as the screen's by pwa/child_texts.py). Each answer is sealed into the statement's draft as it is given; "Send"
 * makes it ready, and it goes home once when the signal returns (SeenDrafts.sendReady), as does the flag.
 *
 * Leaving needs the worker: with no signal, their PIN (checked against the PBKDF2 check kept sealed with the
 * draft, a few tries only); with a signal, their PIN or password, checked by Seen (/api/child-mode/leave).
 */
(() => {
  "use strict";
  const Guard = window.SeenChildGuard;
  const Drafts = window.SeenDrafts;
  const main = document.getElementById("main");
  if (!Guard || !Guard.held() || !main) return;

  // The steps and their words, from the screen's own definitions and the .po files (pwa/child_offline.py).
  const catalogue = (() => {
    try { return JSON.parse(document.getElementById("seen-child-texts").textContent); } catch (e) { return {}; }
  })();
  const steps = catalogue.steps || { faces: [], questions: [], houses: [], tell: [] };
  const FACES = steps.faces;
  const QUESTIONS = steps.questions;
  const HOUSES = steps.houses;
  const TELL = steps.tell;
  const STEPS = ["feelings", "houses", "tell", "done"];
  const encoder = new TextEncoder();
  let draft = null;
  let language = "en";
  let secretToSend = ""; // the worker's PIN after an offline unlock: Seen ends child mode with it when the signal is back
  let left = false;
  let saving = Promise.resolve();

  const t = (message) => ((catalogue.texts || {})[language] || {})[message] || message;
  const speech = () => (catalogue.speech || {})[language] || "en-GB";

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (value !== false && value !== null && value !== undefined) node.setAttribute(name, value === true ? "" : value);
    }
    node.append(...children.filter(Boolean));
    return node;
  }

  function keep() {
    saving = saving.then(() => Drafts.saveDraft(draft)).catch((e) => console.error("Seen: not kept", e));
    return saving;
  }

  function answered(d) {
    const f = d.fields;
    return Object.entries(f).some(([k, v]) => k !== "language" && k !== "drawing_houses" && v) || (d.photos || []).length > 0;
  }

  // ---------------------------------------------------------------- the steps

  function heading(text, level, id) {
    return el("h" + level, { text, id, class: "child-h" });
  }

  function faces(topic, question) {
    const field = "feeling_" + topic;
    const group = el("div", { role: "group", "aria-labelledby": "q-" + topic, class: "faces" });
    FACES.forEach(([face, words], i) => {
      const value = String(i + 1);
      const chosen = draft.fields[field] === value;
      group.append(el("button", { type: "button", class: "face" + (chosen ? " primary" : ""), "aria-pressed": String(chosen),
                                  "data-child-field": field, "data-child-value": value,
                                  onclick: () => { draft.fields[field] = value; keep(); render(); } },
                      el("span", { "aria-hidden": "true", class: "emoji", text: face }), el("span", { text: t(words) })));
    });
    return [heading(t(question), 3, "q-" + topic), group];
  }

  function words(name, question, icon) {
    const id = "words-" + name;
    const box = el("textarea", { id, "data-child-field": name, rows: 3,
                                 oninput: (e) => { draft.fields[name] = e.target.value; keep(); } });
    box.value = draft.fields[name] || "";
    return [heading((icon ? icon + " " : "") + t(question), 3, "h-" + name),
            el("label", { for: id, text: t("Write here, or tell your worker") }), box];
  }

  async function drawing(house) {
    const id = "camera-" + house;
    const input = el("input", { type: "file", id, accept: "image/*", capture: "environment", class: "visually-hidden",
                                "data-child-drawing": house, tabindex: "-1", "aria-hidden": "true" });
    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      await saving;
      try {
        await Guard.keepDrawing(draft, house, file);
        await keep();
      } catch (e) {
        problem.textContent = e.message || String(e);
      }
      render();
    });
    const problem = el("p", { class: "problem", role: "alert" });
    const parts = [input];
    const photoId = (draft.child.drawings || {})[house];
    if (photoId) {
      const blob = await Drafts.photoBlob(draft.id, photoId);
      if (blob) parts.push(el("img", { src: URL.createObjectURL(blob), alt: t("Photo of my drawing"), class: "drawing",
                                       "data-drawing": house }));
    }
    parts.push(el("button", { type: "button", class: "big", "data-child-photo": house, onclick: () => input.click() },
                  el("span", { "aria-hidden": "true", text: "📷 " }), t("Photo of my drawing")), problem);
    return parts;
  }

  function nav(back, forward, action) {
    return el("div", { class: "child-nav" },
      back ? el("button", { type: "button", class: "big", onclick: () => go(draft.child.step - 1), text: t("Back") }) : null,
      el("button", { type: "button", class: "big primary", onclick: action, text: t(forward) }));
  }

  function go(step) {
    draft.child.step = Math.max(0, Math.min(step, STEPS.length - 1));
    keep();
    render().then(() => window.scrollTo(0, 0));
  }

  async function send() {
    draft.child.step = STEPS.length - 1;
    draft.state = "ready"; // goes home once, with its key, when the signal is back
    await keep();
    await render();
  }

  async function notSafe() {
    await saving;
    await Guard.notSafe(draft);
    await keep();
    await render();
    document.getElementById("unsafe-heard").focus();
  }

  function readAloud() {
    const synth = window.speechSynthesis;
    if (!synth) return;
    synth.cancel();
    const said = new SpeechSynthesisUtterance(document.getElementById("seen-child-step").innerText);
    said.lang = speech();
    synth.speak(said);
  }

  // ---------------------------------------------------------------- the worker taking the phone back

  function fromBase64(text) {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  }

  async function pinMatches(pin, check) {
    const key = await crypto.subtle.importKey("raw", encoder.encode(pin), "PBKDF2", false, ["deriveBits"]);
    const bits = new Uint8Array(await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: fromBase64(check.salt), iterations: check.iterations }, key, 256));
    const want = fromBase64(check.check);
    return bits.length === want.length && bits.every((b, i) => b === want[i]);
  }

  async function leaveOnline(secret) {
    // Seen checks it (PIN or password, every try audited) and ends child mode; null when there is no signal.
    let response;
    try {
      response = await fetch("/api/child-mode/leave", { method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ secret }) });
    } catch (e) {
      return null;
    }
    // Signed out, or Seen not answering as it should: the PIN decides, as with no signal.
    if (response.status === 401 || response.status >= 500) return { ok: false, unchecked: true, why: "" };
    let answer = {};
    try { answer = await response.json(); } catch (e) { answer = {}; }
    return { ok: response.ok && answer.ok, why: answer.message || "Seen could not check that. Try again." };
  }

  async function leave(secret) {
    secret = secret.trim();
    const wrong = "That is not your worker's PIN or password, so the phone stays on this screen.";
    if (navigator.onLine) {
      const online = await leaveOnline(secret);
      if (online && !online.unchecked) {
        if (!online.ok) return online.why;
        await handBack();
        left = true;
        return "";
      }
    }
    const pin = draft.child.pin;
    if (!pin) return "With no signal the phone comes back only with a PIN set at hand-over. It comes back with your " +
                     "password when the signal returns.";
    if ((draft.child.pinTries || 0) >= pin.tries) return "Too many wrong PINs: the worker's password is needed now, " +
                                                          "when the signal returns.";
    if (!/^\d{4,8}$/.test(secret) || !(await pinMatches(secret, pin))) {
      draft.child.pinTries = (draft.child.pinTries || 0) + 1;
      await keep();
      return draft.child.pinTries >= pin.tries ? "Too many wrong PINs: the worker's password is needed now, when " +
                                                 "the signal returns." : wrong;
    }
    secretToSend = secret;
    await handBack();
    return "";
  }

  async function handBack() {
    // What the child said goes home; a statement with nothing in it is let go, as an unsent screen is.
    if (draft.state !== "ready") {
      if (answered(draft)) draft.state = "ready";
      await keep();
      if (draft.state !== "ready") await Drafts.deleteDraft(draft.id);
    }
    localStorage.removeItem(Guard.KEY);
    showBack();
  }

  function leaveDialog() {
    const secret = el("input", { type: "password", id: "leave-secret", autocomplete: "off" });
    const problem = el("p", { class: "problem", role: "alert", id: "leave-problem" });
    const dialog = el("dialog", { "aria-labelledby": "leave-heading", id: "leave-dialog", lang: "en-GB" },
      el("h2", { id: "leave-heading", text: "Take the phone back" }),
      el("label", { for: "leave-secret", text: "Your PIN or password" }), secret, problem,
      el("div", { class: "child-nav" },
        el("button", { type: "button", class: "big", text: "Cancel", onclick: () => dialog.close() }),
        el("button", { type: "button", class: "big primary", text: "Take it back", onclick: async () => {
          const why = await leave(secret.value || "");
          secret.value = "";
          problem.textContent = why;
          if (!why) dialog.close();
        } })));
    return dialog;
  }

  function showBack() {
    document.documentElement.lang = "en-GB"; // the worker's again
    main.replaceChildren(
      el("h2", { text: "The phone is yours again", tabindex: "-1", id: "back-heading" }),
      el("p", { id: "back-words", text: left ? "Child mode has ended. What the child said is sent to Seen now." :
        "What the child said is kept sealed on this phone and sent when the signal returns; child mode ends on Seen " +
        "then too." }),
      el("a", { class: "button primary", href: left && draft ? "/child/" + encodeURIComponent(draft.childId) : "/offline",
                id: "back-link", text: left ? "Return to Seen" : "Open the drafts on this phone" }));
    document.getElementById("back-heading").focus();
  }

  // ---------------------------------------------------------------- the screen

  async function render() {
    const step = STEPS[draft.child.step] || "feelings";
    const area = el("section", { id: "seen-child-step", lang: speech(), "data-child-step": step });
    if (!navigator.onLine) area.append(el("p", { class: "notice", text: t("No signal. What you say is kept safe on this phone and sent when the signal comes back.") }));
    if (draft.child.unsafeSaid) {
      area.append(el("p", { role: "alert", id: "unsafe-heard", tabindex: "-1", class: "heard",
                            text: t("Thank you for telling us. Your worker has been told. Talk to them now.") }));
    }
    if (step === "feelings") {
      area.append(el("p", { text: t("Tell us how things are. You can skip anything.") }));
      for (const [topic, question] of QUESTIONS) area.append(...faces(topic, question));
      area.append(nav(false, "Next", () => go(draft.child.step + 1)));
    } else if (step === "houses") {
      area.append(heading(t("My Three Houses"), 2, "houses-heading"));
      for (const [name, icon, question] of HOUSES) area.append(...words(name, question, icon), ...(await drawing(name)));
      area.append(nav(true, "Next", () => go(draft.child.step + 1)));
    } else if (step === "tell") {
      for (const [name, question] of TELL) area.append(...words(name, question));
      area.append(nav(true, "Send", send));
    } else {
      area.append(el("p", { class: "thanks", id: "child-thanks", text: t("Thank you. Give the phone back to your worker.") }));
    }
    const old = document.getElementById("seen-child-step");
    if (old) old.replaceWith(area);
    return area;
  }

  function frame() {
    document.documentElement.lang = speech();
    const header = document.querySelector("header");
    if (header) header.lang = "en-GB"; // Seen's own bar, in English
    const dialog = leaveDialog();
    main.replaceChildren(
      el("div", { class: "child-top" }, el("h2", { text: t("Your space"), class: "child-title" }),
         el("button", { type: "button", class: "big", id: "read-aloud", onclick: readAloud },
            el("span", { "aria-hidden": "true", text: "🔊 " }), t("Read aloud"))),
      el("section", { id: "seen-child-step" }),
      el("button", { type: "button", class: "big unsafe", id: "not-safe", "data-child-unsafe": true, onclick: notSafe },
         el("span", { "aria-hidden": "true", text: "✋ " }), t("I don't feel safe")),
      el("button", { type: "button", class: "big leave", id: "leave-child-mode", onclick: () => dialog.showModal() },
         el("span", { "aria-hidden": "true", text: "🔒 " }), t("For your worker")),
      dialog);
    main.setAttribute("data-child-mode", "held");
  }

  function style() {
    document.head.append(el("style", { text: `
      .child-top { display: flex; align-items: center; gap: .5rem; }
      .child-title { flex: 1; font-size: 1.5rem; margin: .5rem 0; }
      .child-h { font-size: 1.25rem; margin: 1rem 0 .25rem; overflow-wrap: break-word; }
      #seen-child-step p { font-size: 1.125rem; }
      .faces { display: grid; grid-template-columns: repeat(5, minmax(0, 1fr)); gap: .25rem; }
      button.face { flex-direction: column; min-height: 72px; min-width: 48px; padding: .25rem 0; margin: 0; font-size: .8rem;
                    line-height: 1.1; }
      .face .emoji { font-size: 1.6rem; }
      button.big { min-height: 56px; min-width: 48px; font-size: 1.1rem; }
      .child-nav { display: flex; gap: .5rem; margin-top: .75rem; }
      .child-nav > button { flex: 1; }
      button.unsafe { width: 100%; min-height: 64px; margin-top: 1rem; background: #b3261e; border-color: #b3261e; color: #fff;
                      font-size: 1.25rem; }
      button.leave { width: 100%; border-color: transparent; }
      button[data-child-photo] { width: 100%; }
      .heard { font-size: 1.25rem !important; font-weight: 700; background: #fde047; color: #000; padding: .75rem; border-radius: .25rem; }
      .thanks { font-size: 1.5rem !important; font-weight: 700; }
      img.drawing { width: 8rem; height: 8rem; object-fit: cover; border-radius: .25rem; display: block; }
      .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
      dialog { width: min(92vw, 28rem); border: 2px solid var(--blue); border-radius: .5rem; }
      dialog::backdrop { background: rgba(0, 0, 0, .5); }
    ` }));
  }

  async function loop() {
    const status = document.getElementById("seen-connection");
    if (status) status.textContent = navigator.onLine ? "Online" : "Offline";
    if (!navigator.onLine) return;
    if (secretToSend) {
      // Unlocked with no signal: child mode ends on Seen too, before the worker's own drafts go.
      const online = await leaveOnline(secretToSend);
      if (online && online.ok) {
        secretToSend = "";
        left = true;
        showBack();
      } else if (online) {
        secretToSend = ""; // Seen did not take it (signed out, or the password is needed): the worker signs in again
      }
    }
    await Drafts.sendReady(); // the flag at once; the statement once it is sent or the worker has the phone back
  }

  async function start() {
    await Guard.ready;
    const id = Guard.draftId();
    draft = id ? await Drafts.getDraft(id) : null;
    style();
    if (!draft || draft.kind !== "child_statement" || !draft.child) {
      // Nothing kept for this child's time with the phone (an old hand-over): only the way back to the worker.
      main.replaceChildren(el("h2", { text: "Give the phone back to your worker" }),
        el("p", { text: "There is no signal. Your worker takes the phone back when it returns." }));
      main.setAttribute("data-child-mode", "held");
      return;
    }
    language = draft.child.language || draft.fields.language || "en";
    frame();
    await render();
    window.addEventListener("online", loop);
    setInterval(loop, 2000);
    loop();
  }

  window.SeenChildOffline = { render, leave };
  start();
})();
