/* The drafts kept on this phone that Seen refused, where the worker will see them: on the caseload (all of
 * them) and a child's page (theirs), in the slot the page leaves (pwa/layout.refused_drafts). Each says why,
 * with one tap to the offline form (/offline?draft=ID) showing the fields to fix. The slot is filled once the
 * page has drawn it, and again whenever the drafts change.
 */
(function () {
  "use strict";
  const Drafts = window.SeenDrafts;

  function element(tag, attrs, ...children) {
    const node = Object.assign(document.createElement(tag), attrs);
    node.append(...children);
    return node;
  }

  async function showRefused() {
    // On the caseload (every refused draft) and a child's page (theirs): why, and one tap to the fields to fix.
    const slot = document.getElementById("seen-refused-drafts");
    if (!slot) return;
    const childId = slot.dataset.childId || "";
    const refused = (await Drafts.listDrafts()).filter((d) => d.state === "refused" && (!childId || d.childId === childId));
    const key = refused.map((d) => d.id + "@" + d.updated).join();
    if (slot.dataset.key === key && slot.childElementCount === (refused.length ? 1 : 0)) return;
    slot.dataset.key = key;
    if (!refused.length) return slot.replaceChildren();
    const schema = window.SeenPage.schema(); // the forms' titles and nouns (pwa_shell.OFFLINE_FORMS)
    const banner = element("div", { className: "seen-refused", role: "region" },
      element("h2", { id: "seen-refused-title", textContent: "Important" }));
    banner.setAttribute("aria-labelledby", "seen-refused-title");
    banner.dataset.refused = String(refused.length);
    const body = element("div", { className: "body" });
    for (const draft of refused) {
      const what = (schema[draft.kind] || {}).noun || "record";
      const who = draft.childLabel ? " for " + draft.childLabel : "";
      const link = element("a", { href: "/offline?draft=" + encodeURIComponent(draft.id), textContent: "Fix this " + what });
      link.setAttribute("aria-label", "Fix this " + what + who);
      body.append(element("p", { className: "refused-draft" },
        element("strong", { textContent: "Seen could not take the " + what + who + " kept on this phone. " }),
        draft.message || "It needs changes."), link);
      body.lastChild.dataset.draft = draft.id;
    }
    banner.append(body);
    slot.replaceChildren(banner);
  }

  setInterval(showRefused, 1000); // the slot comes with the page's own drawing, a moment after this script
  Drafts.onChange(showRefused);
})();
