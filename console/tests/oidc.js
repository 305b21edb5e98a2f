// A stand-in for Cognito's Hosted UI: the three endpoints the console and `herd up` use, on
// 127.0.0.1, written from the OAuth 2.0 / PKCE specs (RFC 6749, RFC 7636) rather than from the
// console's code, so the browser test checks the console against the protocol and not against
// itself.
//
//   GET  /oauth2/authorize   checks the request (response_type=code, the client id, an S256
//                            challenge, the redirect URI) and shows a sign-in form (user + group);
//   POST /oauth2/authorize   the form: answers 302 to redirect_uri?code=…&state=…;
//   POST /oauth2/token       trades a code once, only with the verifier whose SHA-256 is the
//                            challenge and the same redirect URI, for an RS256 ID token with
//                            Cognito's claims (iss, aud = client id, token_use, cognito:groups…);
//   GET  /.well-known/jwks.json  the public key, as Cognito publishes it (what herd verifies with).
//
// The key is made at start (node:crypto); nothing is written to disk. `log` records each token
// exchange so a test can see what the stand-in accepted or refused, and why.
import { createServer } from "node:http";
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";

const b64url = (buf) => Buffer.from(buf).toString("base64url");

export async function start({ clientId }) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = "standin-" + randomBytes(4).toString("hex");
  const jwk = { ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" };
  const codes = new Map(); // code -> { challenge, redirectUri, user, group, used }
  const log = [];
  let issuer = "";

  const idToken = (user, group) => {
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid }));
    const claims = b64url(JSON.stringify({
      sub: "sub-" + user, "cognito:username": user, "cognito:groups": group ? [group] : [],
      iss: issuer, aud: clientId, token_use: "id", auth_time: now, iat: now, exp: now + 600,
    }));
    return `${header}.${claims}.${b64url(sign("sha256", Buffer.from(`${header}.${claims}`), privateKey))}`;
  };

  const readBody = (req) => new Promise((resolve) => {
    let body = "";
    req.on("data", (d) => { body += d; });
    req.on("end", () => resolve(new URLSearchParams(body)));
  });

  const json = (res, status, body, origin) => {
    const headers = { "content-type": "application/json", "cache-control": "no-store" };
    // The console calls the token endpoint from its own origin, as it calls Cognito's.
    if (origin) headers["access-control-allow-origin"] = origin;
    res.writeHead(status, headers);
    res.end(JSON.stringify(body));
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, issuer);
    if (req.method === "GET" && url.pathname === "/.well-known/jwks.json") return json(res, 200, { keys: [jwk] });
    if (req.method === "GET" && url.pathname === "/oauth2/authorize") {
      const q = url.searchParams;
      const problems = [];
      if (q.get("response_type") !== "code") problems.push("response_type must be code");
      if (q.get("client_id") !== clientId) problems.push("unknown client_id");
      if (q.get("code_challenge_method") !== "S256") problems.push("code_challenge_method must be S256");
      if (!/^[A-Za-z0-9_-]{43}$/.test(q.get("code_challenge") || "")) problems.push("code_challenge must be a base64url SHA-256");
      if (!/^http:\/\/127\.0\.0\.1:\d+\/login$/.test(q.get("redirect_uri") || "")) problems.push("redirect_uri is not registered");
      if (!(q.get("scope") || "").split(" ").includes("openid")) problems.push("scope must include openid");
      if (problems.length) return json(res, 400, { error: "invalid_request", error_description: problems.join("; ") });
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      const hidden = ["redirect_uri", "state", "code_challenge"].map((k) =>
        `<input type="hidden" name="${k}" value="${String(q.get(k) || "").replace(/"/g, "&quot;")}">`).join("");
      return res.end(`<!doctype html><html lang="en"><title>Stand-in Hosted UI</title><link rel="icon" href="data:,"><main><h1>Sign in</h1>
        <form method="post" action="/oauth2/authorize">${hidden}
        <label>Username <input name="username" value="alice"></label>
        <label>Group <select name="group"><option>operator</option><option>viewer</option></select></label>
        <button type="submit" id="standin-submit">Sign in</button></form></main></html>`);
    }
    if (req.method === "POST" && url.pathname === "/oauth2/authorize") {
      const form = await readBody(req);
      const code = randomBytes(16).toString("hex");
      codes.set(code, { challenge: form.get("code_challenge"), redirectUri: form.get("redirect_uri"), user: form.get("username"), group: form.get("group"), used: false });
      const back = new URL(form.get("redirect_uri"));
      back.searchParams.set("code", code);
      back.searchParams.set("state", form.get("state"));
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (req.method === "POST" && url.pathname === "/oauth2/token") {
      const origin = req.headers.origin;
      const form = await readBody(req);
      const grant = codes.get(form.get("code") || "");
      const verifier = form.get("code_verifier") || "";
      let refusal = null;
      if (form.get("grant_type") !== "authorization_code") refusal = "unsupported_grant_type";
      else if (form.get("client_id") !== clientId) refusal = "invalid_client";
      else if (!grant || grant.used) refusal = "invalid_grant: unknown or used code";
      else if (grant.redirectUri !== form.get("redirect_uri")) refusal = "invalid_grant: redirect_uri differs";
      else if (b64url(createHash("sha256").update(verifier).digest()) !== grant.challenge) refusal = "invalid_grant: code_verifier does not match the challenge";
      log.push({ code: form.get("code"), refusal });
      if (refusal) {
        const [error, description] = refusal.split(": ");
        return json(res, 400, { error, error_description: description || error }, origin);
      }
      grant.used = true;
      return json(res, 200, { id_token: idToken(grant.user, grant.group), access_token: "opaque-" + randomBytes(8).toString("hex"), token_type: "Bearer", expires_in: 600 }, origin);
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${server.address().port}`;
  return {
    issuer, domain: issuer, clientId, log,
    jwksUrl: `${issuer}/.well-known/jwks.json`,
    stop: () => { server.closeAllConnections(); server.close(); },
  };
}
