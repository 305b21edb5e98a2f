// Signing in through Cognito's Hosted UI (authorization code + PKCE), in Chromium, against a
// stand-in identity provider (oidc.js) and a real `herd up` that verifies the ID token with the
// stand-in's JWKS. The stand-in checks the protocol independently of the console: the S256
// challenge against the verifier, single-use codes, the registered redirect URI.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startAll } from "./harness.js";
import * as oidc from "./oidc.js";
import { launch, watchedPage, checkProblems as check, axe, shot } from "./browser.js";

const CLIENT_ID = "herd-console-standin";
let env, idp, browser;
const problems = [];

before(async () => {
  idp = await oidc.start({ clientId: CLIENT_ID });
  env = await startAll({
    upArgs: ["--jwks-url", idp.jwksUrl, "--jwt-issuer", idp.issuer, "--jwt-audience", CLIENT_ID, "--cognito-domain", idp.domain],
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await env?.stop();
  idp?.stop();
});

// The console talks to its own origin and, for sign-in only, to the identity provider.
const page = () => watchedPage(browser, { origins: [new URL(env.consoleUrl).origin, idp.issuer], expected4xx: [/\/oauth2\/token$/], problems });
const checkProblems = () => check(problems);

/** From the console's login page through the stand-in's form, as `group`, back to the console. */
async function hostedUi(p, group) {
  await p.goto(env.consoleUrl + "/tests");
  await p.waitForURL(/\/login\?next=/);
  await p.click("text=Sign in with your organisation (Cognito)");
  await p.waitForURL((u) => u.origin === idp.issuer && u.pathname === "/oauth2/authorize");
  const asked = new URL(p.url()).searchParams;
  assert.equal(asked.get("code_challenge_method"), "S256");
  assert.equal(asked.get("redirect_uri"), `${env.consoleUrl}/login`);
  await p.selectOption('select[name="group"]', group);
  await p.fill('input[name="username"]', `${group}-user`);
  await p.click("#standin-submit");
}

test("Cognito Hosted UI: an operator signs in with code + PKCE and gets write controls", async () => {
  const p = await page();
  await hostedUi(p, "operator");
  await p.waitForURL(/\/tests$/);
  await p.waitForSelector('[data-testid="new-test"]');
  assert.equal(await p.textContent("#who"), "operator");
  const accepted = idp.log.filter((e) => !e.refusal);
  assert.equal(accepted.length, 1, `the stand-in traded one code: ${JSON.stringify(idp.log)}`);
  // The session holds the ID token, and the API knows who it is.
  const whoami = await p.evaluate(async () => (await fetch("/api/v1/whoami", { headers: { authorization: `Bearer ${sessionStorage.getItem("herd.token")}` } })).json());
  assert.deepEqual(whoami, { ...whoami, role: "operator", subject: "operator-user" });
  assert.equal(await p.evaluate(() => sessionStorage.getItem("herd.pkce")), null, "the verifier is gone once used");
  await axe(p, "tests after Cognito sign-in");
  await shot(p, "17-cognito-operator");
  await p.context().close();
  checkProblems();
});

test("Cognito Hosted UI: a viewer gets no write controls; a replayed code is refused at the form", async () => {
  const p = await page();
  await hostedUi(p, "viewer");
  await p.waitForURL(/\/tests$/);
  await p.waitForSelector("#who");
  assert.equal(await p.textContent("#who"), "viewer");
  assert.equal(await p.locator('[data-testid="new-test"]').count(), 0);
  const used = idp.log.at(-1).code;

  // The same code again (a back button, a leaked URL), even with a matching state in the tab: the
  // provider refuses a used code, and the console shows its reason rather than signing anyone in.
  await p.evaluate(() => {
    sessionStorage.clear();
    sessionStorage.setItem("herd.pkce", JSON.stringify({ verifier: "v".repeat(43), state: "replayed" }));
  });
  await p.goto(`${env.consoleUrl}/login?code=${used}&state=replayed`);
  await p.waitForSelector("#token-error:not(:empty)");
  assert.match(await p.textContent("#token-error"), /unknown or used code/);
  assert.equal(await p.evaluate(() => sessionStorage.getItem("herd.token")), null);

  // A state that is not this tab's (a forged callback) never reaches the provider.
  const before = idp.log.length;
  await p.goto(`${env.consoleUrl}/login?code=${used}&state=forged`);
  await p.waitForSelector("#token-error:not(:empty)");
  assert.match(await p.textContent("#token-error"), /does not match this tab's request/);
  assert.equal(idp.log.length, before);
  await shot(p, "18-cognito-replayed-code");
  await p.context().close();
  checkProblems();
});

test("Cognito Hosted UI: the token endpoint refuses a verifier that does not match the challenge", async () => {
  const p = await page();
  // Swap the verifier on its way to the provider: the stand-in must refuse it, and the console
  // must show the provider's reason at the form.
  await p.route(`${idp.issuer}/oauth2/token`, (route) => {
    const body = new URLSearchParams(route.request().postData() || "");
    body.set("code_verifier", "x".repeat(43));
    return route.continue({ postData: body.toString() });
  });
  await p.goto(env.consoleUrl + "/login");
  await p.click("text=Sign in with your organisation (Cognito)");
  await p.waitForURL((u) => u.origin === idp.issuer);
  await p.click("#standin-submit");
  await p.waitForSelector("#token-error:not(:empty)");
  assert.match(await p.textContent("#token-error"), /code_verifier does not match/);
  assert.equal(await p.evaluate(() => sessionStorage.getItem("herd.token")), null);
  await p.context().close();
  checkProblems();
});
