// Credentials. An API token (or a Cognito ID token) lives in sessionStorage: it survives a reload
// but not the closing of the tab, and is never written to localStorage or a cookie.
//
// Signing in asks `GET /api/v1/whoami` with the candidate: 401 refuses it, otherwise the answer
// {role, subject} says whether to show operator controls (the server checks every write anyway).

const KEY = "herd.token", ROLE = "herd.role", SUBJECT = "herd.subject";

export const token = () => sessionStorage.getItem(KEY);
export const role = () => sessionStorage.getItem(ROLE) || "viewer";
export const isOperator = () => role() === "operator";
export const subject = () => sessionStorage.getItem(SUBJECT) || "";

/** Checks `candidate` against the API; stores it and its role when it is accepted. */
export async function signIn(candidate) {
  const res = await fetch("/api/v1/whoami", { headers: { accept: "application/json", authorization: `Bearer ${candidate}` } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message || `the token was refused (HTTP ${res.status})`);
  sessionStorage.setItem(KEY, candidate);
  sessionStorage.setItem(ROLE, body.role === "operator" ? "operator" : "viewer");
  sessionStorage.setItem(SUBJECT, body.subject || "");
  return role();
}

export function signOut(message) {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(ROLE);
  sessionStorage.removeItem(SUBJECT);
  if (message) sessionStorage.setItem("herd.flash", message);
  if (location.pathname !== "/login") {
    history.pushState({}, "", `/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    dispatchEvent(new PopStateEvent("popstate"));
  }
}

// ---- Cognito Hosted UI: authorization code with PKCE ------------------------------------------
//
// The server tells the console where the Hosted UI is: `GET /api/v1/auth/config` (no credential)
// answers {"cognito": {"domain": "https://….auth.REGION.amazoncognito.com", "client_id": "…",
// "scopes": ["openid", "email"]}} when `herd up` has --cognito-domain (and the JWT settings),
// else {"cognito": null}; the button is shown only in the first case.

export async function authConfig() {
  const cached = sessionStorage.getItem("herd.authconfig");
  if (cached) return JSON.parse(cached);
  let config = { cognito: null };
  try {
    const res = await fetch("/api/v1/auth/config", { headers: { accept: "application/json" } });
    if (res.ok) config = await res.json();
  } catch { /* offline or refused: token sign-in only */ }
  sessionStorage.setItem("herd.authconfig", JSON.stringify(config));
  return config;
}

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const redirectUri = () => `${location.origin}/login`;

/** Sends the browser to the Hosted UI with a fresh PKCE verifier and state (kept in the session). */
export async function startCognito(cognito) {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem("herd.pkce", JSON.stringify({ verifier, state }));
  const q = new URLSearchParams({
    response_type: "code", client_id: cognito.client_id, redirect_uri: redirectUri(),
    scope: (cognito.scopes || ["openid", "email"]).join(" "),
    code_challenge: challenge, code_challenge_method: "S256", state,
  });
  location.assign(`${cognito.domain.replace(/\/$/, "")}/oauth2/authorize?${q}`);
}

/**
 * Back from the Hosted UI with ?code&state: trades the code for tokens and signs in with the
 * *ID* token — herd checks `aud`, which Cognito puts only in ID tokens.
 */
export async function finishCognito(cognito, params) {
  const saved = JSON.parse(sessionStorage.getItem("herd.pkce") || "null");
  sessionStorage.removeItem("herd.pkce");
  if (!saved || saved.state !== params.get("state")) throw new Error("the sign-in response does not match this tab's request; try again");
  const res = await fetch(`${cognito.domain.replace(/\/$/, "")}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", client_id: cognito.client_id, code: params.get("code"), redirect_uri: redirectUri(), code_verifier: saved.verifier }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.id_token) throw new Error(body.error_description || body.error || `the token endpoint answered ${res.status}`);
  return signIn(body.id_token);
}
