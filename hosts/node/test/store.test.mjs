// The store contract's conformance cases (store/src/conformance.rs, and the host backends'
// tenant, registry and token cases of host/src/store/mod.rs), ported case by case and run
// against both Node backends. Plus what is Node's own: the UTF-16 vs UTF-8 key order, change
// events (WIT 0.3), and atomicity across two connections to one SQLite file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from '../src/store/memory.mjs';
import { SqliteStore } from '../src/store/sqlite.mjs';
import { compareKeys } from '../src/keys.mjs';
import { generateToken, hashToken } from '../src/store/common.mjs';

const T = 't_00000000000000aa';
const U = 't_00000000000000bb';
const enc = (s) => new TextEncoder().encode(s);
const text = (b) => new TextDecoder().decode(b);
const put = (key, value) => ({ tag: 'put', key, value: enc(value) });
const del = (key) => ({ tag: 'delete', key });
const absent = (key) => ({ key, version: undefined });
const at = (key, version) => ({ key, version });
const scan = (start, end, skip, limit, descending, keysOnly = false) => ({ start, end, skip, limit, descending, keysOnly });
const keys = (entries) => entries.map((e) => e.key);
const kind = (f) => {
  try { f(); } catch (e) { return e.kind; }
  return 'ok';
};

/** The store of one tenant, as the component's import sees it. */
function view(s, tenant) {
  return {
    get: (k) => s.get(tenant, k),
    getMany: (ks) => s.getMany(tenant, ks),
    scan: (sc) => s.scan(tenant, sc),
    count: (a, b) => s.count(tenant, a, b),
    commit: (c, w, e) => s.commit(tenant, c, w, e),
  };
}

function commitIsAtomic(s) {
  const v1 = s.commit([], [put('a/1', 'x')]);
  assert.equal(kind(() => s.commit([at('a/1', v1 + 1)], [put('a/2', 'y'), del('a/1')])), 'conflict');
  assert.equal(s.get('a/2'), undefined);
  assert.equal(text(s.get('a/1').value), 'x');
  // One failing check among passing ones still vetoes the whole commit.
  assert.equal(kind(() => s.commit([at('a/1', v1), absent('a/1')], [put('a/3', 'z')])), 'conflict');
  assert.equal(s.get('a/3'), undefined);
  const v2 = s.commit([at('a/1', v1)], [put('a/2', 'y'), del('a/1')]);
  assert.ok(v2 > v1);
  assert.equal(s.get('a/1'), undefined);
  assert.equal(s.get('a/2').version, v2);
}

function absentChecks(s) {
  const v = s.commit([absent('u/1')], [put('u/1', 'x')]);
  assert.equal(kind(() => s.commit([absent('u/1')], [put('u/1', 'y')])), 'conflict');
  assert.equal(text(s.get('u/1').value), 'x');
  // Deleting an absent key is fine, and a deleted key passes an absence check again.
  s.commit([at('u/1', v)], [del('u/1')]);
  s.commit([], [del('u/1')]);
  const recreated = s.commit([absent('u/1')], [put('u/1', 'z')]);
  assert.ok(recreated > v, 'a re-created key never gets an old version back');
  // Checks without writes verify and change nothing, not even the sequence.
  const now = s.commit([], [put('u/2', 'w')]);
  assert.equal(s.commit([at('u/2', now)], []), now);
  assert.equal(s.commit([], []), now);
  assert.equal(kind(() => s.commit([absent('u/2')], [])), 'conflict', 'a failing check fails a commit without writes too');
  const next = s.commit([], [put('u/3', 'v')]);
  assert.ok(next > now);
  assert.equal(s.get('u/2').version, now);
}

function versionsIncrease(s) {
  let last = 0;
  for (let i = 0; i < 5; i++) {
    const v = s.commit([], [put('v/k', String(i)), put('v/other', 'o')]);
    assert.ok(v > last, `sequence must grow: ${v} after ${last}`);
    const e = s.get('v/k');
    assert.equal(e.version, v);
    assert.equal(text(e.value), String(i));
    assert.equal(s.get('v/other').version, v);
    last = v;
  }
  const got = s.getMany(['v/k', 'v/none', 'v/other']);
  assert.equal(got.length, 3);
  assert.equal(got[0].key, 'v/k');
  assert.equal(got[1], undefined);
  assert.equal(text(got[2].value), 'o');
  assert.deepEqual(s.getMany([]), []);
}

function scans(s) {
  s.commit([], Array.from({ length: 10 }, (_, i) => put(`s/${i}`, 'v')));
  s.commit([], [put('s', 'before'), put('s0', 'after')]);
  assert.deepEqual(keys(s.scan(scan('s/', 's0', 0, 100, false))), Array.from({ length: 10 }, (_, i) => `s/${i}`));
  assert.deepEqual(keys(s.scan(scan('s/', 's0', 2, 3, false))), ['s/2', 's/3', 's/4']);
  assert.deepEqual(keys(s.scan(scan('s/', 's0', 1, 3, true))), ['s/8', 's/7', 's/6']);
  // The end bound is exclusive, the start bound inclusive.
  assert.deepEqual(keys(s.scan(scan('s/3', 's/5', 0, 10, true))), ['s/4', 's/3']);
  assert.deepEqual(s.scan(scan('s/', 's0', 0, 0, false)), []);
  assert.deepEqual(s.scan(scan('s/', 's0', 10, 5, false)), []);
  assert.deepEqual(s.scan(scan('s/', 's0', Number.MAX_VALUE, 5, true)), []);
  assert.deepEqual(s.scan(scan('s/5', 's/5', 0, 5, false)), []);
  const ko = s.scan(scan('s/', 's0', 0, 2, false, true));
  assert.deepEqual(keys(ko), ['s/0', 's/1']);
  assert.ok(ko.every((e) => e.value.length === 0 && e.version > 0));
  const full = s.scan(scan('s/', 's0', 0, 2, false));
  assert.equal(text(full[0].value), 'v');
  assert.equal(full[0].version, ko[0].version);
  // Order is bytewise UTF-8: 'Z' < 'a' < 'é' (0xC3 0xA9).
  s.commit([], [put('o/a', ''), put('o/Z', ''), put('o/é', '')]);
  assert.deepEqual(keys(s.scan(scan('o/', 'o0', 0, 10, false))), ['o/Z', 'o/a', 'o/é']);
}

function counts(s) {
  s.commit([], Array.from({ length: 7 }, (_, i) => put(`c/${i}`, 'v')));
  assert.equal(s.count('c/', 'c0'), 7);
  assert.equal(s.count('c/2', 'c/5'), 3);
  assert.equal(s.count('c/2', 'c/2'), 0);
  assert.equal(s.count('c0', 'c1'), 0);
}

function malformedCalls(s) {
  assert.equal(kind(() => s.scan(scan('b', 'a', 0, 1, false))), 'invalid');
  assert.equal(kind(() => s.count('b', 'a')), 'invalid');
  assert.equal(kind(() => s.get('')), 'invalid');
  assert.equal(kind(() => s.getMany(['x', ''])), 'invalid');
  assert.equal(kind(() => s.commit([], [put('', 'x')])), 'invalid');
  assert.equal(kind(() => s.commit([absent('')], [])), 'invalid');
  assert.equal(kind(() => s.commit([], [put('ok', 'x'), del('')])), 'invalid');
  assert.equal(s.get('ok'), undefined, 'an invalid commit writes nothing');
}

/** Code points above U+FFFF sort after U+E000–U+FFFF in UTF-8, before them in UTF-16. */
function astralKeysSortBytewise(s) {
  s.commit([], [put('x/\u{1F600}', ''), put('x/\uFF5E', ''), put('x/\uE000', ''), put('x/\u{10FFFF}', '')]);
  assert.deepEqual(keys(s.scan(scan('x/', 'x/\u{10FFFF}', 0, 10, false))), ['x/\uE000', 'x/\uFF5E', 'x/\u{1F600}']);
  assert.equal(s.count('x/\uFFFF', 'x0'), 2, 'both astral keys lie above U+FFFF');
}

function eventsAreCommittedWithTheirWrites(s) {
  const ev = (k, data) => ({ kind: k, data: JSON.stringify(data), previous: undefined });
  const first = s.commit([], [put('e/1', 'x')], [ev('user-created', { id: 1 }), ev('group-member-added', { id: 2 })]);
  assert.equal(kind(() => s.commit([absent('e/1')], [put('e/1', 'y')], [ev('user-updated', { id: 1 })])), 'conflict');
  assert.equal(s.get('e/1').version, first, 'a refused commit stores neither its writes nor its events');
  assert.equal(kind(() => s.commit([], [], [ev('user-updated', { id: 1 })])), 'invalid', 'events need a write');
  assert.equal(kind(() => s.commit([], [put('e/2', 'z')], [{ kind: 'nonsense', data: '{}' }])), 'invalid');
  assert.equal(s.get('e/2'), undefined, 'a refused event refuses its writes');
  const second = s.commit([], [put('e/1', 'y')], [{ kind: 'user-updated', data: '{"id":1}', previous: '{"active":true}' }]);
  const got = s.events();
  assert.deepEqual(got.map((e) => [e.position, e.seq, e.kind, e.previous ?? null]), [
    [1, first, 'user-created', null], [2, first, 'group-member-added', null], [3, second, 'user-updated', '{"active":true}'],
  ]);
  assert.deepEqual(s.events({ after: 2 }).map((e) => e.position), [3]);
}

function runContract(s) {
  commitIsAtomic(s);
  absentChecks(s);
  versionsIncrease(s);
  scans(s);
  counts(s);
  malformedCalls(s);
  astralKeysSortBytewise(s);
}

function tenantIsolation(b) {
  const last = b.commit(T, [], [put('v/k', 't')]);
  assert.ok(b.commit(U, [], [put('v/k', 'u')]) > last, 'one sequence for every tenant');
  const vt = b.commit(T, [], [put('i/k', 't'), put('i/t', 't')]);
  const vu = b.commit(U, [], [put('i/k', 'u'), put('i/u', 'u')]);
  assert.equal(text(b.get(T, 'i/k').value), 't');
  assert.equal(text(b.get(U, 'i/k').value), 'u');
  assert.equal(kind(() => b.commit(T, [at('i/k', vu)], [])), 'conflict', 'checks see only the caller\'s tenant');
  b.commit(T, [at('i/k', vt), absent('i/u')], [del('i/k')]);
  assert.equal(text(b.get(U, 'i/k').value), 'u');
  assert.deepEqual(keys(b.scan(T, scan('i/', 'i0', 0, 10, false))), ['i/t']);
  assert.ok(b.scan(U, scan('', '\u{10FFFF}', 0, 1000, true)).every((e) => e.key !== 'i/t' && !e.key.startsWith('s/')));
  assert.equal(b.count(U, 'i/', 'i0'), 2);
  assert.deepEqual(b.events(U), [], 'events are per tenant');
}

function tenantRegistry(b) {
  const acme = b.createTenant('acme', { profile: 'writer' });
  assert.match(acme.id, /^t_[0-9a-f]{16}$/);
  assert.ok(acme.createdAt > 1_600_000_000);
  assert.equal(kind(() => b.createTenant('acme', {})), 'already-exists');
  const upper = b.createTenant('ACME', {});
  assert.notEqual(upper.id, acme.id, 'names are case-sensitive');
  assert.equal(kind(() => b.createTenant('bad name', {})), 'invalid');
  assert.equal(kind(() => b.createTenant('t_0123456789abcdef', {})), 'invalid');
  assert.equal(kind(() => b.createTenant('arr', [1])), 'invalid');
  assert.deepEqual(b.tenant('acme'), acme);
  assert.deepEqual(b.tenant(acme.id), acme);
  assert.equal(b.tenant('nobody'), undefined);
  assert.deepEqual(b.tenants().map((t) => t.name), ['ACME', 'acme']);
  b.setPolicy(acme.id, { profile: 'standard', n: 1 });
  assert.deepEqual(b.tenant('acme').policy, { profile: 'standard', n: 1 });
  assert.equal(kind(() => b.setPolicy(acme.id, 'x')), 'invalid');
  assert.equal(kind(() => b.setPolicy('t_ffffffffffffffff', {})), 'not-found');
}

function tokens(b) {
  const a = b.createTenant('tok-a', {});
  const z = b.createTenant('tok-z', {});
  const ta = generateToken();
  const tz = generateToken();
  assert.match(ta, /^scimlet_[A-Za-z0-9_-]{43}$/);
  const ia = b.addToken(a.id, hashToken(ta));
  b.addToken(a.id, hashToken(generateToken()));
  b.addToken(z.id, hashToken(tz));
  assert.equal(kind(() => b.addToken(z.id, hashToken(ta))), 'already-exists');
  assert.equal(kind(() => b.addToken('t_ffffffffffffffff', hashToken('x'))), 'not-found');
  assert.equal(b.tenantForToken(hashToken(ta)).id, a.id);
  assert.equal(b.tenantForToken(hashToken(tz)).id, z.id);
  assert.equal(b.tenantForToken(hashToken('scimlet_nope')), undefined);
  assert.equal(kind(() => b.revokeToken(z.id, ia.id)), 'not-found', 'a tenant cannot revoke another tenant\'s token');
  b.revokeToken(a.id, ia.id);
  b.revokeToken(a.id, ia.id);
  assert.equal(b.tenantForToken(hashToken(ta)), undefined);
  assert.equal(b.tenantForToken(hashToken(tz)).id, z.id);
}

function runAll(b) {
  runContract(view(b, T));
  eventsAreCommittedWithTheirWrites({ ...view(b, T), events: (o) => b.events(T, o) });
  tenantIsolation(b);
  tenantRegistry(b);
  tokens(b);
}

test('keys compare in UTF-8 byte order', () => {
  const words = ['', 'a', 'ab', 'Z', 'é', '\uE000', '\uFFFF', '\u{10000}', '\u{1F600}', '\u{10FFFF}', 'z\u{10FFFF}'];
  for (const x of words) {
    for (const y of words) {
      assert.equal(compareKeys(x, y), Math.sign(Buffer.compare(Buffer.from(x), Buffer.from(y))), `${x} vs ${y}`);
    }
  }
});

test('the memory store conforms', () => runAll(new MemoryStore()));

test('the SQLite store conforms, and keeps everything across a reopen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'scimlet-node-'));
  try {
    const path = join(dir, 'scimlet.db');
    const s = new SqliteStore(path);
    runAll(s);
    const before = s.scan(T, scan('', '\u{10FFFF}', 0, 10_000, false));
    s.close();
    const again = new SqliteStore(path);
    assert.deepEqual(again.scan(T, scan('', '\u{10FFFF}', 0, 10_000, false)), before);
    assert.equal(again.events(T).length, 3);
    assert.equal(again.tenant('acme').name, 'acme');
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two connections to one SQLite file see each other\'s commits and conflict', () => {
  const dir = mkdtempSync(join(tmpdir(), 'scimlet-node-'));
  try {
    const path = join(dir, 'scimlet.db');
    const a = new SqliteStore(path);
    const b = new SqliteStore(path);
    const v1 = a.commit(T, [absent('k')], [put('k', '1')]);
    assert.equal(kind(() => b.commit(T, [absent('k')], [put('k', '2')])), 'conflict');
    const v2 = b.commit(T, [at('k', v1)], [put('k', '2')]);
    assert.ok(v2 > v1, 'the sequence is the file\'s, not the connection\'s');
    assert.equal(text(a.get(T, 'k').value), '2');
    a.close();
    b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unopenable SQLite path is an unavailable store, not a crash', () => {
  assert.equal(kind(() => new SqliteStore('/nonexistent-dir/x/scimlet.db')), 'unavailable');
});
