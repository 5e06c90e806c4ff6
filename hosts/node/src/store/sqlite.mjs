// The durable backend on better-sqlite3: one SQLite file (WAL, synchronous=FULL) holding every
// tenant's keys, change events and the tenant registry. Keys are stored as UTF-8 BLOBs, which
// SQLite compares with memcmp: the contract's bytewise order, for free. better-sqlite3 is
// synchronous, like the component's store import, so a commit is one IMMEDIATE transaction:
// its checks and writes see no other writer in between, also from another process (the CLI's
// `tenant create` while the server runs).

import Database from 'better-sqlite3';
import {
  StoreError, checkCommit, checkKey, checkPolicy, checkRange, checkTenantName, conflict,
  newTenantId, newTokenId, unixNow,
} from './common.mjs';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('seq', 0);
CREATE TABLE IF NOT EXISTS kv (
  tenant TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, version INTEGER NOT NULL,
  PRIMARY KEY (tenant, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  tenant TEXT NOT NULL, position INTEGER NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL,
  kind TEXT NOT NULL, data TEXT NOT NULL, previous TEXT,
  PRIMARY KEY (tenant, position)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tenants (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, policy TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), hash BLOB NOT NULL UNIQUE,
  created_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
`;

const utf8 = (s) => Buffer.from(s, 'utf8');
const EMPTY = new Uint8Array(0);

export class SqliteStore {
  /** Opens (creating if needed) the SQLite file at `path`. */
  constructor(path) {
    try {
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.db.exec(SCHEMA);
    } catch (e) {
      throw unavailable(e);
    }
    const q = (sql) => this.db.prepare(sql);
    this.sql = {
      get: q('SELECT value, version FROM kv WHERE tenant = ? AND key = ?'),
      version: q('SELECT version FROM kv WHERE tenant = ? AND key = ?').pluck(),
      asc: q('SELECT key, value, version FROM kv WHERE tenant = ? AND key >= ? AND key < ? ORDER BY key ASC LIMIT ? OFFSET ?'),
      desc: q('SELECT key, value, version FROM kv WHERE tenant = ? AND key >= ? AND key < ? ORDER BY key DESC LIMIT ? OFFSET ?'),
      ascKeys: q('SELECT key, version FROM kv WHERE tenant = ? AND key >= ? AND key < ? ORDER BY key ASC LIMIT ? OFFSET ?'),
      descKeys: q('SELECT key, version FROM kv WHERE tenant = ? AND key >= ? AND key < ? ORDER BY key DESC LIMIT ? OFFSET ?'),
      count: q('SELECT count(*) FROM kv WHERE tenant = ? AND key >= ? AND key < ?').pluck(),
      seq: q("SELECT value FROM meta WHERE name = 'seq'").pluck(),
      setSeq: q("UPDATE meta SET value = ? WHERE name = 'seq'"),
      put: q('INSERT INTO kv (tenant, key, value, version) VALUES (?, ?, ?, ?) ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, version = excluded.version'),
      del: q('DELETE FROM kv WHERE tenant = ? AND key = ?'),
      lastPosition: q('SELECT coalesce(max(position), 0) FROM events WHERE tenant = ?').pluck(),
      addEvent: q('INSERT INTO events (tenant, position, seq, time, kind, data, previous) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      events: q('SELECT position, seq, time, kind, data, previous FROM events WHERE tenant = ? AND position > ? ORDER BY position LIMIT ?'),
      addTenant: q('INSERT INTO tenants (id, name, policy, created_at) VALUES (?, ?, ?, ?)'),
      tenantById: q('SELECT * FROM tenants WHERE id = ?'),
      tenantByName: q('SELECT * FROM tenants WHERE name = ?'),
      tenants: q('SELECT * FROM tenants'),
      setPolicy: q('UPDATE tenants SET policy = ? WHERE id = ?'),
      addToken: q('INSERT INTO tokens (id, tenant_id, hash, created_at) VALUES (?, ?, ?, ?)'),
      revoke: q('UPDATE tokens SET revoked = 1 WHERE id = ? AND tenant_id = ?'),
      tenantForToken: q('SELECT t.* FROM tokens k JOIN tenants t ON t.id = k.tenant_id WHERE k.hash = ? AND k.revoked = 0'),
    };
    this.commitTx = this.db.transaction((tenant, checks, writes, events) => {
      for (const c of checks) {
        if ((this.sql.version.get(tenant, utf8(c.key)) ?? null) !== (c.version ?? null)) throw conflict();
      }
      const current = this.sql.seq.get();
      if (writes.length === 0) return current;
      const seq = current + 1;
      this.sql.setSeq.run(seq);
      for (const w of writes) {
        if (w.tag === 'put') this.sql.put.run(tenant, utf8(w.key), w.value, seq);
        else this.sql.del.run(tenant, utf8(w.key));
      }
      if (events.length > 0) {
        let position = this.sql.lastPosition.get(tenant);
        const time = Date.now();
        for (const e of events) {
          this.sql.addEvent.run(tenant, ++position, seq, time, e.kind, e.data, e.previous ?? null);
        }
      }
      return seq;
    });
  }

  get(tenant, key) {
    checkKey(key);
    const row = guard(() => this.sql.get.get(tenant, utf8(key)));
    return row ? { key, value: new Uint8Array(row.value), version: row.version } : undefined;
  }

  getMany(tenant, keys) {
    keys.forEach(checkKey);
    // One read transaction, so that the answers come from one snapshot.
    return guard(() => this.db.transaction(() => keys.map((k) => this.get(tenant, k)))());
  }

  scan(tenant, { start, end, skip = 0, limit = Infinity, descending = false, keysOnly = false }) {
    checkRange(start, end);
    if (limit <= 0) return [];
    const stmt = keysOnly
      ? (descending ? this.sql.descKeys : this.sql.ascKeys)
      : (descending ? this.sql.desc : this.sql.asc);
    // SQLite's LIMIT and OFFSET are signed 64-bit: -1 is "no limit", and a skip past every
    // row needs no query at all.
    if (skip > Number.MAX_SAFE_INTEGER) return [];
    const rows = guard(() => stmt.all(tenant, utf8(start), utf8(end), Number.isFinite(limit) ? limit : -1, skip));
    return rows.map((r) => ({
      key: r.key.toString('utf8'),
      value: keysOnly ? EMPTY : new Uint8Array(r.value),
      version: r.version,
    }));
  }

  count(tenant, start, end) {
    checkRange(start, end);
    return guard(() => this.sql.count.get(tenant, utf8(start), utf8(end)));
  }

  commit(tenant, checks, writes, events = []) {
    checkCommit(checks, writes, events);
    return guard(() => this.commitTx.immediate(tenant, checks, writes, events));
  }

  events(tenant, { after = 0, limit = 1000 } = {}) {
    return guard(() => this.sql.events.all(tenant, after, limit));
  }

  createTenant(name, policy) {
    checkTenantName(name);
    checkPolicy(policy);
    const t = { id: newTenantId(), name, policy, createdAt: unixNow() };
    guard(() => this.sql.addTenant.run(t.id, name, JSON.stringify(policy), t.createdAt), `tenant ${name}`);
    return structuredClone(t);
  }

  tenant(nameOrId) {
    const row = guard(() => this.sql.tenantById.get(nameOrId) ?? this.sql.tenantByName.get(nameOrId));
    return row && tenantOf(row);
  }

  tenants() {
    // Bytewise by name, as the Rust backends order them.
    return guard(() => this.sql.tenants.all())
      .map(tenantOf)
      .sort((a, b) => Buffer.compare(utf8(a.name), utf8(b.name)));
  }

  setPolicy(tenantId, policy) {
    checkPolicy(policy);
    const { changes } = guard(() => this.sql.setPolicy.run(JSON.stringify(policy), tenantId));
    if (changes === 0) throw new StoreError('not-found', `tenant ${tenantId}`);
  }

  addToken(tenantId, hash) {
    if (!this.tenant(tenantId)) throw new StoreError('not-found', `tenant ${tenantId}`);
    const info = { id: newTokenId(), tenantId, createdAt: unixNow(), revoked: false };
    guard(() => this.sql.addToken.run(info.id, tenantId, Buffer.from(hash), info.createdAt), 'token');
    return info;
  }

  revokeToken(tenantId, tokenId) {
    const { changes } = guard(() => this.sql.revoke.run(tokenId, tenantId));
    if (changes === 0) throw new StoreError('not-found', `token ${tokenId}`);
  }

  tenantForToken(hash) {
    const row = guard(() => this.sql.tenantForToken.get(Buffer.from(hash)));
    return row && tenantOf(row);
  }

  close() {
    this.db.close();
  }
}

function tenantOf(row) {
  return { id: row.id, name: row.name, policy: JSON.parse(row.policy), createdAt: row.created_at };
}

/** Runs a database call; our own errors pass through, a uniqueness violation is
 * `already-exists` (of `what`), anything else from SQLite is `unavailable`. */
function guard(call, what = 'row') {
  try {
    return call();
  } catch (e) {
    if (e instanceof StoreError) throw e;
    if (e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      throw new StoreError('already-exists', what);
    }
    throw unavailable(e);
  }
}

const unavailable = (e) => new StoreError('unavailable', `sqlite: ${e?.message ?? e}`);
