// Credentials. An API token (or a Cognito ID token) lives in sessionStorage: it survives a reload
// but not the closing of the tab, and is never written to localStorage or a cookie.
//
// The API has no "who am I" route, so the role is found by a write that cannot do anything:
// `POST /api/v1/whoami` is routed nowhere, but the role check comes first in the router, so a
// viewer gets 403 and an operator 404 (an unknown token: 401). Nothing is created or logged.
// (A `GET /api/v1/whoami` → {role} on the server would be cleaner; see console/README.md.)

const KEY = "herd.token", ROLE = "herd.role";

export const token = () => sessionStorage.getItem(KEY);
export const role = () => sessionStorage.getItem(ROLE) || "viewer";
export const isOperator = () => role() === "operator";

/** Checks `candidate` against the API; stores it and its role when it is accepted. */
export async function signIn(candidate) {
  const res = await fetch("/api/v1/whoami", { method: "POST", headers: { authorization: `Bearer ${candidate}` } });
  if (res.status === 401) {
    const body = await res.json().catch(() => ({}));
    throw new Error(body.message || "the token was refused");
  }
  sessionStorage.setItem(KEY, candidate);
  sessionStorage.setItem(ROLE, res.status === 403 ? "viewer" : "operator");
  return role();
}

export function signOut(message) {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(ROLE);
  if (message) sessionStorage.setItem("herd.flash", message);
  if (location.pathname !== "/login") {
    history.pushState({}, "", `/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    dispatchEvent(new PopStateEvent("popstate"));
  }
}

// ---- Cognito Hosted UI: authorization code with PKCE ------------------------------------------
//
// The server must tell the console where the Hosted UI is. `herd up` takes --jwks-url,
// --jwt-issuer and --jwt-audience (enough to *verify* tokens) but has no Cognito domain and no
// route that publishes it, so this reads `GET /api/v1/auth/config` — expected, without a
// credential, to answer {"cognito": {"domain": "https://….auth.REGION.amazoncognito.com",
// "client_id": "…", "scopes": ["openid", "email"]}} — and shows the button only when it does.
// Until the server has that route, the answer is 401/404 and only token sign-in is offered.

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
