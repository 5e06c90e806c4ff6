// Proof of sameness: the Okta and Entra vectors of tests/vectors/ replayed against the Rust host
// (`scimlet serve`) and the Node host (`scimlet-node serve`), each on a fresh SQLite store, and
// every response compared: status, SCIM headers and body bytes must be identical once ids,
// timestamps and base URLs are normalised. Both hosts must run the same component bytes: the
// file gen/ was transpiled from is found, byte for byte, inside the Rust binary.
//
// SCIMLET_BIN names the Rust binary (default: $CARGO_TARGET_DIR/debug/scimlet, or the
// workspace's target/debug/scimlet).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { componentInfo } from '../src/runtime.mjs';

const PKG = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WORKSPACE = resolve(PKG, '../..');
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(WORKSPACE, 'target');
const RUST_BIN = process.env.SCIMLET_BIN ?? join(TARGET, 'debug', 'scimlet');
const NODE_CLI = join(PKG, 'bin', 'scimlet-node.mjs');
const VECTORS = join(WORKSPACE, 'tests', 'vectors');
/** The response headers the component sets; transport headers (date, keep-alive) differ by
 * server and are not SCIM. */
const COMPARED_HEADERS = ['content-type', 'location', 'etag', 'www-authenticate', 'retry-after'];

const hosts = {
  rust: {
    command: (args) => [RUST_BIN, args],
    serveArgs: (data) => ['serve', '--listen', '127.0.0.1:0', '--data', data, '--cache-dir', join(TARGET, 'cwasm-cache')],
  },
  node: {
    command: (args) => [process.execPath, [NODE_CLI, ...args]],
    serveArgs: (data) => ['serve', '--listen', '127.0.0.1:0', '--data', data],
  },
};

/** Starts one host on a fresh data dir with the vector's tenant; answers its URL and token. */
async function start(host, vector) {
  const data = mkdtempSync(join(tmpdir(), `scimlet-diff-${host}-`));
  const [cmd, pre] = hosts[host].command([]);
  let token;
  const profile = vector.tenant?.profile;
  if (profile) {
    const out = execFileSync(cmd, [...pre, 'tenant', 'create', 'idp', '--profile', profile, '--data', data], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    token = out.trimEnd().split('\n').at(-1).trim();
  }
  const child = spawn(cmd, [...pre, ...hosts[host].serveArgs(data)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const deadline = Date.now() + 120_000;
  while (!/serving SCIM at (http:\/\/\S+\/scim\/v2)/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      throw new Error(`${host} host did not start: ${out}\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  token ??= out.split('\n').find((l) => /^scimlet_[A-Za-z0-9_-]{43}$/.test(l.trim())).trim();
  return {
    url: /serving SCIM at (http:\/\/\S+\/scim\/v2)/.exec(out)[1],
    token,
    stop: async () => {
      await new Promise((ok) => { child.once('exit', ok); child.kill('SIGTERM'); });
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** `{var}` replaced by values saved from earlier responses (the Rust runner's rule). */
function subst(text, vars) {
  return text.replace(/\{([A-Za-z0-9_]+)\}/g, (whole, name) => {
    if (!(name in vars)) throw new Error(`vector uses {${name}} before saving it`);
    return vars[name];
  });
}
function substJson(v, vars) {
  if (typeof v === 'string') return subst(v, vars);
  if (Array.isArray(v)) return v.map((x) => substJson(x, vars));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [subst(k, vars), substJson(x, vars)]));
  return v;
}
const pointer = (doc, p) => p.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  .reduce((d, k) => (d == null ? undefined : d[k]), doc);

/** Replaces what legitimately differs between two runs: generated ids (numbered in order of
 * first appearance, so the same resource keeps the same name), timestamps, the base URL. */
function normaliser(base) {
  const ids = new Map();
  return (text) => text
    .split(base).join('<base>')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (id) => {
      if (!ids.has(id)) ids.set(id, `<id${ids.size + 1}>`);
      return ids.get(id);
    })
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)/g, '<time>');
}

/** Replays every step (and its stored checks) against one host; answers the normalised
 * transcript of every request and response. */
async function replay(host, vector) {
  const server = await start(host, vector);
  const norm = normaliser(server.url.replace(/\/scim\/v2$/, ''));
  const vars = {};
  const transcript = [];
  const send = async (label, method, target, body) => {
    const headers = { authorization: `Bearer ${server.token}`, ...(vector.headers ?? {}) };
    if (body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/scim+json';
    }
    const res = await fetch(server.url + target, { method, headers, body });
    const text = await res.text();
    const head = COMPARED_HEADERS.filter((h) => res.headers.has(h)).map((h) => `${h}: ${norm(res.headers.get(h))}`);
    transcript.push({ label, request: `${method} ${norm(target)}`, status: res.status, headers: head, body: norm(text) });
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, json };
  };
  try {
    for (const [i, step] of vector.steps.entries()) {
      const label = `step ${i + 1} (${step.name})`;
      const path = subst(step.path, vars);
      const target = step.query ? `${path}?${subst(step.query, vars)}` : path;
      const body = step.body == null ? undefined : JSON.stringify(substJson(step.body, vars));
      const { status, json } = await send(label, step.method, target, body);
      // The replay itself must be right: the Rust host passes these vectors (cargo test).
      assert.equal(status, step.expect.status, `${host} host, ${label}: ${step.method} ${target} answered ${status}`);
      for (const [name, p] of Object.entries(step.save ?? {})) {
        const v = pointer(json, p);
        if (v === undefined) throw new Error(`${host} host, ${label}: nothing at ${p} to save`);
        vars[name] = typeof v === 'string' ? v : JSON.stringify(v);
      }
      const stored = step.expect.stored === undefined ? [] : [].concat(step.expect.stored);
      for (const [j, get] of stored.entries()) {
        const p = subst(get.path, vars);
        await send(`${label}, stored check ${j + 1}`, 'GET', get.query ? `${p}?${subst(get.query, vars)}` : p, undefined);
      }
    }
  } finally {
    await server.stop();
  }
  return transcript;
}

const files = ['okta', 'entra'].flatMap((idp) => readdirSync(join(VECTORS, idp))
  .filter((f) => f.endsWith('.json')).sort().map((f) => join(idp, f)));

test('both hosts run the same component bytes', () => {
  assert.ok(existsSync(RUST_BIN), `no Rust host at ${RUST_BIN}: build it (cargo build -p scimlet) or set SCIMLET_BIN`);
  const info = componentInfo();
  const wasm = readFileSync(info.source);
  assert.equal(createHash('sha256').update(wasm).digest('hex'), info.sha256, 'gen/ is stale: transpile again');
  assert.ok(readFileSync(RUST_BIN).indexOf(wasm) >= 0, `${RUST_BIN} does not embed ${info.source}`);
  console.log(`component sha256 ${info.sha256} (${wasm.length} bytes): transpiled for Node, embedded in ${RUST_BIN}`);
});

test('the vectors found', () => assert.ok(files.length >= 4, `expected Okta and Entra vectors in ${VECTORS}`));

for (const file of files) {
  test(`identical responses from both hosts: ${file}`, async () => {
    const vector = JSON.parse(readFileSync(join(VECTORS, file), 'utf8'));
    const [rust, node] = await Promise.all([replay('rust', vector), replay('node', vector)]);
    assert.equal(node.length, rust.length);
    for (let i = 0; i < rust.length; i++) {
      assert.deepEqual(node[i], rust[i], `${file}, ${rust[i].label}: the Node host answered differently`);
    }
    console.log(`${file}: ${rust.length} responses identical`);
  });
}
