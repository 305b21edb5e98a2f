// Sign in: an API token (from `herd token create`), or Cognito's Hosted UI when the server
// publishes its settings (see auth.js). On success, back to where the user was going.

import { h } from "../util.js";
import { signIn, authConfig, startCognito, finishCognito } from "../auth.js";
import { navigate } from "../router.js";

function safeNext(query) {
  const next = query.get("next") || "/tests";
  // Only paths of this console: never an absolute URL (no open redirect).
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login") ? next : "/tests";
}

export async function render(main, _params, query) {
  document.title = "Sign in · herd";
  const error = h("p.field-error", { id: "token-error", role: "alert" });
  const flash = sessionStorage.getItem("herd.flash");
  sessionStorage.removeItem("herd.flash");
  const input = h("input", {
    name: "token", id: "token", type: "password", autocomplete: "off", required: true,
    spellcheck: "false", "aria-describedby": "token-help token-error",
  });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      input.removeAttribute("aria-invalid");
      submit.disabled = true;
      try {
        await signIn(input.value.trim());
        await navigate(safeNext(query), { replace: true });
        focusTop();
      } catch (err) {
        error.textContent = err.message;
        input.setAttribute("aria-invalid", "true");
        input.focus();
      } finally {
        submit.disabled = false;
      }
    },
  },
    h("label", { for: "token" }, "API token", input),
    h("p.note", { id: "token-help" }, "Create one with ", h("code", {}, "herd token create --role operator"), " (or ", h("code", {}, "--role viewer"), " to read only). It is kept in this tab only."),
    submit,
    error,
  );
  const cognitoBox = h("div");
  main.append(h("section.login", {},
    h("h1", {}, "Sign in to herd"),
    flash ? h("p.error-box", { role: "alert" }, flash) : null,
    form, cognitoBox));

  const config = await authConfig();
  if (config.cognito && config.cognito.domain && config.cognito.client_id) {
    if (query.get("code")) {
      try {
        await finishCognito(config.cognito, query);
        return navigate("/tests", { replace: true });
      } catch (err) {
        error.textContent = err.message;
      }
    }
    cognitoBox.append(h("p.muted", {}, "or"), h("button.ghost", { type: "button", onclick: () => startCognito(config.cognito) }, "Sign in with your organisation (Cognito)"));
  }
  input.focus();
}

/**
 * After signing in, focus starts from the top of the document as on a fresh page load (the
 * focused input is gone with the login page; Chromium would otherwise resume Tab from where it
 * was, inside the new page): the first Tab reaches the skip link.
 */
function focusTop() {
  const body = document.body;
  body.setAttribute("tabindex", "-1");
  body.focus({ preventScroll: true });
  body.addEventListener("blur", () => body.removeAttribute("tabindex"), { once: true });
}
