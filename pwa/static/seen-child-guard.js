/* Child mode on this phone (pwa/pages/child_mode.py). While the child holds the phone, the offline page the
 * service worker serves in place of a page that cannot load shows the child where to go, never the worker's
 * drafts or caseload. The child's screen sets the mark; every worker screen (pwa/layout.py's frame), reached
 * only once the worker has taken the phone back, clears it. */
(() => {
  const KEY = "seen-child-mode";
  const held = () => {
    try { return localStorage.getItem(KEY) === "1"; } catch (e) { return false; }
  };
  window.SeenChildGuard = { KEY, held };
  const main = document.getElementById("main");
  if (!held() || !main) return;
  main.innerHTML = "";
  const heading = document.createElement("h2");
  heading.textContent = "Give the phone back to your worker";
  const words = document.createElement("p");
  words.textContent = "There is no signal. Your worker takes the phone back when it returns.";
  main.append(heading, words);
  main.setAttribute("data-child-mode", "held");
})();
