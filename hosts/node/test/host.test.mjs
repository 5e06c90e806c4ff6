// The Node host as its users see it: the CLI's tenants and durability, the handler under
// node:http and Express, limits and failures answered with the component's own SCIM errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { MemoryStore, Runtime, scimlet, componentInfo } from '../src/index.mjs';
import { PKG, call, startCli } from './support.mjs';

const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const tmp = () => mkdtempSync(join(tmpdir(), 'scimlet-node-'));

async function listen(handler) {
  const server = createServer(handler);
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((ok) => server.close(ok)) };
}

test('the CLI prints the default tenant\'s token alone on a line, and the SQLite store outlives a restart', async () => {
  const data = tmp();
  try {
    let srv = await startCli(['--data', data]);
    const token = srv.lines[1];
    assert.match(token, /^scimlet_[A-Za-z0-9_-]{43}$/);
    const base = srv.url;
    const created = await call(`${base}/Users`, { method: 'POST', token, body: { schemas: [USER], userName: 'ada@example.com' } });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('location'), `${base}/Users/${created.body.id}`);
    const missing = await call(`${base}/Users`);
    assert.equal(missing.status, 401);
    assert.equal(missing.body.schemas[0], ERROR);
    const wrong = await call(`${base}/Users`, { token: `${token}x` });
    assert.equal(wrong.status, 401);
    await srv.stop();

    srv = await startCli(['--data', data]);
    assert.ok(!srv.lines.some((l) => l.startsWith('scimlet_')), 'no new token on a second start');
    const found = await call(`${srv.url}/Users?filter=${encodeURIComponent('userName eq "ada@example.com"')}`, { token });
    assert.equal(found.status, 200);
    assert.deepEqual(found.body.Resources.map((u) => u.id), [created.body.id]);
    await srv.stop();
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('tenants made with `tenant create` see only their own users', async () => {
  const data = tmp();
  try {
    const { execFileSync } = await import('node:child_process');
    const create = (name, ...more) => execFileSync(process.execPath, [join(PKG, 'bin/scimlet-node.mjs'), 'tenant', 'create', name, '--data', data, ...more], { encoding: 'utf8' }).trimEnd().split('\n').at(-1);
    const a = create('a');
    const b = create('b', '--profile', 'writer');
    const srv = await startCli(['--data', data]);
    assert.ok(!srv.lines.some((l) => l.startsWith('scimlet_')), 'tenants exist: no default one');
    await call(`${srv.url}/Users`, { method: 'POST', token: a, body: { schemas: [USER], userName: 'only-a@example.com' } });
    assert.equal((await call(`${srv.url}/Users`, { token: a })).body.totalResults, 1);
    assert.equal((await call(`${srv.url}/Users`, { token: b })).body.totalResults, 0);
    await srv.stop();
    assert.throws(() => create('a'), /already exists/);
    assert.throws(() => create('c', '--profile', 'bogus'), /unknown profile/);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('as Express middleware: tenants from the gateway\'s own callback, other routes untouched', async () => {
  const store = new MemoryStore();
  const acme = store.createTenant('acme', { profile: 'standard' });
  const globex = store.createTenant('globex', { profile: 'writer' });
  const byHeader = { acme, globex };
  const app = express();
  app.get('/', (_req, res) => res.send('home'));
  app.use('/scim/v2', await scimlet({ store, resolveTenant: (req) => byHeader[req.headers['x-tenant']] ?? null }));
  app.use((_req, res) => res.status(404).send('gateway 404'));
  const srv = await listen(app);
  try {
    assert.equal(await (await fetch(`${srv.url}/`)).text(), 'home');
    assert.equal(await (await fetch(`${srv.url}/elsewhere`)).text(), 'gateway 404');
    const post = await call(`${srv.url}/scim/v2/Users`, { method: 'POST', headers: { 'x-tenant': 'acme' }, body: { schemas: [USER], userName: 'g@example.com' } });
    assert.equal(post.status, 201);
    assert.equal(post.body.meta.location, `${srv.url}/scim/v2/Users/${post.body.id}`);
    assert.equal((await call(`${srv.url}/scim/v2/Users/${post.body.id}`, { headers: { 'x-tenant': 'globex' } })).status, 404);
    const refused = await call(`${srv.url}/scim/v2/Users`, { headers: { 'x-tenant': 'nobody' } });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.schemas[0], ERROR);
    // The writer profile's role extension shows in globex's schemas, not in acme's.
    const schemas = async (t) => (await call(`${srv.url}/scim/v2/Schemas`, { headers: { 'x-tenant': t } })).body.Resources.map((s) => s.id);
    assert.ok((await schemas('globex')).some((id) => id.includes('writer')));
    assert.ok(!(await schemas('acme')).some((id) => id.includes('writer')));
  } finally {
    await srv.close();
  }
});

test('body limits: 413 from the component, the large limit on PUT /Groups/{id}, 408 for a stalled body', async () => {
  const store = new MemoryStore();
  const t = store.createTenant('t', {});
  const handler = await scimlet({ store, resolveTenant: () => t, maxBodyBytes: 1000, maxLargeBodyBytes: 100_000, requestTimeoutMs: 300 });
  const srv = await listen(handler);
  try {
    const big = { schemas: [USER], userName: 'x@example.com', displayName: 'x'.repeat(2000) };
    const tooLarge = await call(`${srv.url}/scim/v2/Users`, { method: 'POST', body: big });
    assert.equal(tooLarge.status, 413);
    assert.match(tooLarge.body.detail, /1000 bytes/);
    const group = await call(`${srv.url}/scim/v2/Groups`, { method: 'POST', body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'G' } });
    assert.equal(group.status, 201);
    const put = await call(`${srv.url}/scim/v2/Groups/${group.body.id}`, { method: 'PUT', body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'G'.repeat(3000) } });
    assert.notEqual(put.status, 413, 'PUT /Groups/{id} takes the large limit');
    const stalled = await new Promise((ok, fail) => {
      const req = request(`${srv.url}/scim/v2/Users`, { method: 'POST', headers: { 'content-length': '50', 'content-type': 'application/scim+json' } }, (res) => {
        let text = '';
        res.on('data', (d) => { text += d; }).on('end', () => ok({ status: res.statusCode, body: JSON.parse(text) }));
      });
      req.on('error', fail);
      req.write('{"userName":');
    });
    assert.equal(stalled.status, 408);
    assert.equal(stalled.body.schemas[0], ERROR);
  } finally {
    await srv.close();
  }
});

test('a failing store answers 503 with a SCIM error and writes nothing', async () => {
  const store = new MemoryStore();
  const t = store.createTenant('t', {});
  const failing = Object.create(store);
  failing.commit = () => { throw new Error('disk on fire'); };
  const srv = await listen(await scimlet({ store: failing, resolveTenant: () => t }));
  try {
    const r = await call(`${srv.url}/scim/v2/Users`, { method: 'POST', body: { schemas: [USER], userName: 'x@example.com' } });
    assert.equal(r.status, 503);
    assert.equal(r.body.schemas[0], ERROR);
    assert.equal(store.count(t.id, '', '\u{10FFFF}'), 0);
  } finally {
    await srv.close();
  }
});

test('a group of 1 001 members is streamed in chunks and arrives whole', async () => {
  const store = new MemoryStore();
  const t = store.createTenant('t', {});
  const handler = await scimlet({ store, resolveTenant: () => t });
  const srv = await listen(handler);
  try {
    const ids = [];
    for (let i = 0; i < 1001; i++) {
      const u = handler.runtime.handle(t, {
        method: 'POST', path: '/Users', query: '', headers: [['content-type', 'application/scim+json']],
        body: new TextEncoder().encode(JSON.stringify({ schemas: [USER], userName: `u${i}@example.com` })), baseUrl: 'http://x/scim/v2',
      });
      ids.push(JSON.parse(new TextDecoder().decode(u.body)).id);
    }
    const g = await call(`${srv.url}/scim/v2/Groups`, { method: 'POST', body: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Big', members: ids.map((value) => ({ value })) } });
    assert.equal(g.status, 201);
    const got = await call(`${srv.url}/scim/v2/Groups/${g.body.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body.members.map((m) => m.value).sort(), [...ids].sort());
  } finally {
    await srv.close();
  }
});

test('the component\'s change events are stored with its commits, in order, per tenant (contract 0.3)', async () => {
  const data = tmp();
  try {
    const { SqliteStore } = await import('../src/index.mjs');
    const store = new SqliteStore(join(data, 'events.db'));
    const t = store.createTenant('t', {});
    const other = store.createTenant('o', {});
    const srv = await listen(await scimlet({ store, resolveTenant: (req) => (req.headers['x-tenant'] === 'o' ? other : t) }));
    try {
      const u = await call(`${srv.url}/scim/v2/Users`, { method: 'POST', body: { schemas: [USER], userName: 'ev@example.com', active: true } });
      assert.equal(u.status, 201);
      const off = await call(`${srv.url}/scim/v2/Users/${u.body.id}`, { method: 'PATCH', body: { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: 'active', value: false }] } });
      assert.equal(off.status, 200);
      const events = store.events(t.id);
      assert.deepEqual(events.map((e) => [e.position, e.kind]), [[1, 'user-created'], [2, 'user-deactivated']]);
      assert.equal(JSON.parse(events[0].data).id, u.body.id);
      assert.ok(events[1].seq > events[0].seq);
      assert.deepEqual(store.events(other.id), []);
    } finally {
      await srv.close();
      store.close();
    }
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('a component of another contract version is refused at load, in words', async () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'scimlet.js'), `export function instantiate() { return { 'scimlet:scim/handler@0.1.0': {}, handler: {} }; }\n`);
    writeFileSync(join(dir, 'component.json'), '{}');
    await assert.rejects(Runtime.load({ store: new MemoryStore(), dir }), /speaks scimlet:scim@0\.1\.0, this Node host speaks scimlet:scim@/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the transpiled component records the SHA-256 of the Rust build\'s file', () => {
  const info = componentInfo();
  assert.ok(info.source.endsWith('scimlet_guest.wasm'));
  assert.equal(createHash('sha256').update(readFileSync(info.source)).digest('hex'), info.sha256,
    'gen/ is stale: the component was rebuilt since it was transpiled');
});
