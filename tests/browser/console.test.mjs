// The console and the setup page in a real, headless browser (Debian's chromium, driven by
// playwright-core), against the real scimlet binary. The accessible names used here are the
// contract of issue 16. Screenshots of every page, at a laptop size and a phone size, go to
// $SCREENSHOTS (default: target/browser-screenshots).
//
// Usage: SCIMLET_BIN=target/debug/scimlet node --test console.test.mjs
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const here = new URL(".", import.meta.url).pathname;
const target = process.env.CARGO_TARGET_DIR ?? resolve(here, "../../target");
const BIN = process.env.SCIMLET_BIN ?? join(target, "debug", "scimlet");
const SHOTS = process.env.SCREENSHOTS ?? join(target, "browser-screenshots");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ADMIN_TOKEN = "browser-admin-token-0123456789";
const SIZES = { laptop: { width: 1366, height: 768 }, phone: { width: 390, height: 844 } };

let server, data, browser, consoleUrl, scimUrl, root;

/** Starts scimlet and reads its banner for the console and SCIM URLs. */
async function startServer() {
  data = mkdtempSync(join(tmpdir(), "scimlet-browser-"));
  server = spawn(
    BIN,
    ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data", data,
      "--cache-dir", join(target, "cwasm-cache")],
    { env: { ...process.env, SCIMLET_ADMIN_TOKEN: ADMIN_TOKEN }, stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: server.stdout });
  for await (const line of lines) {
    const c = line.match(/^scimlet console at (\S+)/);
    if (c) consoleUrl = c[1].replace(/\/$/, "");
    const s = line.match(/^scimlet serving SCIM at (\S+)/);
    if (s) { scimUrl = s[1]; break; }
  }
  assert.ok(consoleUrl && scimUrl, "the server announced its console and SCIM URLs");
  root = scimUrl.replace(/\/scim\/v2$/, "");
  lines.on("line", () => {}); // keep draining stdout
}

/** Full-page screenshots at both sizes; the page is left at the laptop size. */
async function shoot(page, name) {
  for (const [size, viewport] of Object.entries(SIZES)) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: join(SHOTS, `${name}-${size}.png`), fullPage: true });
  }
  await page.setViewportSize(SIZES.laptop);
}

async function scim(token, method, path, body) {
  const resp = await fetch(`${scimUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/scim+json",
      "user-agent": "Okta SCIM Client 1.0.0",
    },
    body: body && JSON.stringify(body),
  });
  return { status: resp.status, body: await resp.text() };
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  await startServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
});

after(async () => {
  await browser?.close();
  server?.kill();
  if (data) rmSync(data, { recursive: true, force: true });
});

test("an operator provisions a tenant from the console and hands out a setup link", async () => {
  const context = await browser.newContext({ viewport: SIZES.laptop });
  const page = await context.newPage();
  const tenantUrl = `${consoleUrl}/tenants/acme`;

  // Sign in.
  await page.goto(`${consoleUrl}/`);
  await shoot(page, "01-sign-in");
  await page.getByLabel("Admin token").fill("wrong-token-wrong-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("That is not the admin token.").waitFor();
  await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Create tenant" }).waitFor();

  // Create a tenant: its page shows the first token, once.
  await page.getByLabel("Name", { exact: true }).fill("acme");
  await page.getByLabel("Profile").selectOption("standard");
  await page.getByRole("button", { name: "Create tenant" }).click();
  await page.getByText("SCIM base URL").first().waitFor();
  const first = await page.getByLabel("New bearer token").inputValue();
  assert.match(first, /^scimlet_/);
  assert.equal((await scim(first, "GET", "/Users")).status, 200);
  assert.equal(await page.locator("#scim-url").inputValue(), scimUrl);

  // Generate another token and use it.
  await page.getByRole("button", { name: "Generate token" }).click();
  const second = await page.getByLabel("New bearer token").inputValue();
  assert.notEqual(second, first);
  assert.equal((await scim(second, "GET", "/Users")).status, 200);
  await shoot(page, "03-tenant-new-token");

  // Create a team and make it the default.
  await page.getByLabel("Team name").fill("Sales");
  await page.getByRole("button", { name: "Create team" }).click();
  await page.getByRole("table", { name: "Teams" }).getByText("Sales").waitFor();
  await page.getByLabel("Default team").selectOption("Sales");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.waitForURL(tenantUrl);
  assert.equal(await page.getByLabel("Default team").inputValue(), "Sales");

  // A user created over SCIM shows in the console, in that team.
  const created = await scim(second, "POST", "/Users", {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
    userName: "ada@example.com",
    name: { givenName: "Ada", familyName: "Lovelace" },
  });
  assert.equal(created.status, 201, created.body);
  await page.getByRole("link", { name: "Users" }).click();
  const row = page.getByRole("row").filter({ hasText: "ada@example.com" });
  await row.waitFor();
  await row.getByText("Sales").waitFor();
  await shoot(page, "04-users");
  await page.getByLabel("Search userName").fill("nobody");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByText("No user matches.").waitFor();

  // Revoke the first token (asked once, naming it): it gets 401, the other still works.
  await page.goto(tenantUrl);
  await page.getByText("SCIM base URL").first().waitFor();
  await shoot(page, "02-tenant");
  await page.getByRole("table", { name: "Bearer tokens" }).getByRole("button", { name: "Revoke" }).first().click();
  await page.getByRole("heading", { name: "Revoke token" }).waitFor();
  await shoot(page, "05-revoke-confirm");
  await page.getByRole("button", { name: "Revoke token" }).click();
  await page.waitForURL(tenantUrl);
  assert.equal((await scim(first, "GET", "/Users")).status, 401);
  assert.equal((await scim(second, "GET", "/Users")).status, 200);

  // The other tabs.
  await page.getByRole("link", { name: "Activity" }).click();
  await page.getByRole("heading", { name: "Requests per hour, last 7 days" }).waitFor();
  await shoot(page, "06-activity");
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.getByRole("heading", { name: "Webhook endpoints" }).waitFor();
  await shoot(page, "07-webhooks");
  await page.getByRole("link", { name: "Okta guide" }).click();
  await page.getByText("SCIM connector base URL").first().waitFor();
  await shoot(page, "08-okta-guide");
  await page.getByRole("link", { name: "Entra ID guide" }).click();
  await page.getByText("Tenant URL").first().waitFor();

  // A setup link, opened by the customer's administrator in a fresh browser context.
  await page.goto(tenantUrl);
  await page.getByRole("button", { name: "Create setup link" }).click();
  const link = await page.getByLabel("Setup link").inputValue();
  assert.ok(link.startsWith(`${root}/setup/`), link);
  const customer = await browser.newContext({ viewport: SIZES.laptop });
  const setup = await customer.newPage();
  const opened = await setup.goto(link);
  assert.equal(opened.status(), 200);
  await setup.getByText("SCIM base URL").first().waitFor();
  await setup.getByRole("heading", { name: /acme/ }).waitFor();
  assert.equal(await setup.getByRole("button", { name: "Create setup link" }).count(), 0);
  assert.equal(await setup.getByRole("button", { name: "Create team" }).count(), 0);
  await setup.getByRole("button", { name: "Generate token" }).click();
  const third = await setup.getByLabel("New bearer token").inputValue();
  assert.equal((await scim(third, "GET", "/Users")).status, 200);
  await shoot(setup, "09-setup-page");
  await setup.getByLabel("Default team").selectOption("Sales");
  await setup.getByRole("button", { name: "Save", exact: true }).click();
  await setup.getByText("SCIM base URL").first().waitFor();

  // An altered link is refused, and an expired one is gone.
  const altered = await setup.goto(link.slice(0, -2) + (link.endsWith("AA") ? "BB" : "AA"));
  assert.equal(altered.status(), 403);
  const made = await fetch(`${consoleUrl}/admin/tenants/acme/setup-links`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ expires: "1s" }),
  });
  assert.equal(made.status, 201);
  const shortLived = (await made.json()).url;
  await new Promise((r) => setTimeout(r, 2100));
  const expired = await setup.goto(shortLived);
  assert.equal(expired.status(), 410);
  await setup.getByRole("heading", { name: "This setup link has expired" }).waitFor();
  await shoot(setup, "10-setup-expired");
  await customer.close();

  // A form posted without its CSRF token is refused, and changes nothing.
  await page.goto(`${consoleUrl}/`);
  await page.getByLabel("Name", { exact: true }).fill("forged");
  await page.locator("form[action='/tenants'] input[name='csrf']").evaluate((el) => el.remove());
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${consoleUrl}/tenants`),
    page.getByRole("button", { name: "Create tenant" }).click(),
  ]);
  assert.equal(refused.status(), 403);
  await page.getByRole("heading", { name: "Form refused" }).waitFor();
  await shoot(page, "11-form-refused");
  await page.goto(`${consoleUrl}/`);
  assert.equal(await page.getByRole("link", { name: "forged" }).count(), 0);
  await page.getByRole("link", { name: "acme" }).waitFor();
  await shoot(page, "00-tenants");
  await context.close();
});
