// Entry point: theme toggle, the header, link interception for the router, and the sign-in
// guard. Everything else is loaded per page (router.js).

import { route, navigate } from "./router.js";
import { token, role, signOut } from "./auth.js";

const root = document.documentElement;

function effectiveTheme() {
  return root.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
}

function syncThemeButton() {
  const b = document.getElementById("theme");
  const dark = effectiveTheme() === "dark";
  b.setAttribute("aria-pressed", String(dark));
  b.title = dark ? "Switch to the light theme" : "Switch to the dark theme";
}

document.getElementById("theme").addEventListener("click", () => {
  const next = effectiveTheme() === "dark" ? "light" : "dark";
  root.dataset.theme = next;
  localStorage.setItem("herd.theme", next);
  syncThemeButton();
  // Charts take their colours from CSS variables when they are built: tell them to rebuild.
  document.dispatchEvent(new CustomEvent("herd:theme"));
});
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  syncThemeButton();
  document.dispatchEvent(new CustomEvent("herd:theme"));
});
syncThemeButton();

document.getElementById("signout").addEventListener("click", () => signOut());

// Same-origin links become router navigations (modifier keys keep the browser's behaviour).
document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download") || e.defaultPrevented || e.button !== 0) return;
  if (e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/assets/")) return;
  e.preventDefault();
  navigate(url.pathname + url.search).then(() => document.getElementById("main").focus({ preventScroll: true }));
});

function syncHeader() {
  const signedIn = Boolean(token());
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn;
  document.getElementById("who").textContent = signedIn ? role() : "";
  document.body.dataset.role = signedIn ? role() : "";
  const path = location.pathname;
  for (const a of document.querySelectorAll("#nav a")) {
    const on = path === a.getAttribute("href") || path.startsWith(a.getAttribute("href") + "/") || (path === "/" && a.getAttribute("href") === "/tests");
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}
document.addEventListener("herd:routed", syncHeader);

// Without a credential every page but /login sends you there, and back afterwards.
const guard = (path) => (!token() && path !== "/login" ? `/login?next=${encodeURIComponent(location.pathname + location.search)}` : null);

addEventListener("popstate", () => route(guard));
route(guard);
