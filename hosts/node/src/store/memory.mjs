// An in-memory backend: every tenant's ordered key space, change events and the tenant
// registry, lost at exit. The reference for the durable one (sqlite.mjs): both run the same
// conformance cases (test/store.test.mjs), ported from the Rust store crate's suite.

import { compareKeys, lowerBound } from '../keys.mjs';
import {
  StoreError, checkCommit, checkKey, checkPolicy, checkRange, checkTenantName, conflict,
  newTenantId, newTokenId, unixNow,
} from './common.mjs';

export class MemoryStore {
  constructor() {
    /** tenant id -> { keys: sorted string[], map: Map<key, {value, version}>, events: [] } */
    this.spaces = new Map();
    /** One commit sequence for every tenant, as in the Rust backends. */
    this.seq = 0;
    this.tenantsById = new Map();
    this.tokensByHash = new Map();
  }

  space(tenant) {
    let s = this.spaces.get(tenant);
    if (!s) {
      s = { keys: [], map: new Map(), events: [] };
      this.spaces.set(tenant, s);
    }
    return s;
  }

  get(tenant, key) {
    checkKey(key);
    const e = this.spaces.get(tenant)?.map.get(key);
    return e ? { key, value: e.value, version: e.version } : undefined;
  }

  getMany(tenant, keys) {
    keys.forEach(checkKey);
    return keys.map((k) => this.get(tenant, k));
  }

  scan(tenant, { start, end, skip = 0, limit = Infinity, descending = false, keysOnly = false }) {
    checkRange(start, end);
    const s = this.spaces.get(tenant);
    if (!s) return [];
    const from = lowerBound(s.keys, start);
    const to = lowerBound(s.keys, end);
    const n = Math.max(0, Math.min(limit, to - from - skip));
    const out = [];
    for (let i = 0; i < n; i++) {
      const key = s.keys[descending ? to - 1 - skip - i : from + skip + i];
      const e = s.map.get(key);
      out.push({ key, value: keysOnly ? new Uint8Array(0) : e.value, version: e.version });
    }
    return out;
  }

  count(tenant, start, end) {
    checkRange(start, end);
    const s = this.spaces.get(tenant);
    return s ? lowerBound(s.keys, end) - lowerBound(s.keys, start) : 0;
  }

  commit(tenant, checks, writes, events = []) {
    checkCommit(checks, writes, events);
    const s = this.space(tenant);
    for (const c of checks) {
      if ((s.map.get(c.key)?.version ?? null) !== (c.version ?? null)) throw conflict();
    }
    // Nothing to write: nothing changes, the sequence included.
    if (writes.length === 0) return this.seq;
    const seq = ++this.seq;
    for (const w of writes) {
      const present = s.map.has(w.key);
      if (w.tag === 'put') {
        // Copy: the caller's buffer may be a view into memory it reuses.
        s.map.set(w.key, { value: Uint8Array.from(w.value), version: seq });
        if (!present) s.keys.splice(lowerBound(s.keys, w.key), 0, w.key);
      } else if (present) {
        s.map.delete(w.key);
        s.keys.splice(lowerBound(s.keys, w.key), 1);
      }
    }
    const time = Date.now();
    for (const e of events) {
      s.events.push({
        position: s.events.length + 1, seq, time, kind: e.kind, data: e.data,
        previous: e.previous ?? null,
      });
    }
    return seq;
  }

  /** The tenant's change events after `after` (a position), oldest first, at most `limit`. */
  events(tenant, { after = 0, limit = 1000 } = {}) {
    const all = this.spaces.get(tenant)?.events ?? [];
    return all.slice(after, after + limit);
  }

  createTenant(name, policy) {
    checkTenantName(name);
    checkPolicy(policy);
    for (const t of this.tenantsById.values()) {
      if (t.name === name) throw new StoreError('already-exists', `tenant ${name}`);
    }
    const t = { id: newTenantId(), name, policy: structuredClone(policy), createdAt: unixNow() };
    this.tenantsById.set(t.id, t);
    return structuredClone(t);
  }

  tenant(nameOrId) {
    let t = this.tenantsById.get(nameOrId);
    if (!t) t = [...this.tenantsById.values()].find((x) => x.name === nameOrId);
    return t ? structuredClone(t) : undefined;
  }

  tenants() {
    return [...this.tenantsById.values()]
      .sort((a, b) => compareKeys(a.name, b.name))
      .map((t) => structuredClone(t));
  }

  setPolicy(tenantId, policy) {
    checkPolicy(policy);
    const t = this.tenantsById.get(tenantId);
    if (!t) throw new StoreError('not-found', `tenant ${tenantId}`);
    t.policy = structuredClone(policy);
  }

  addToken(tenantId, hash) {
    if (!this.tenantsById.has(tenantId)) throw new StoreError('not-found', `tenant ${tenantId}`);
    const h = Buffer.from(hash).toString('hex');
    if (this.tokensByHash.has(h)) throw new StoreError('already-exists', 'token');
    const info = { id: newTokenId(), tenantId, createdAt: unixNow(), revoked: false };
    this.tokensByHash.set(h, info);
    return { ...info };
  }

  revokeToken(tenantId, tokenId) {
    const info = [...this.tokensByHash.values()].find((t) => t.id === tokenId && t.tenantId === tenantId);
    if (!info) throw new StoreError('not-found', `token ${tokenId}`);
    info.revoked = true;
  }

  tenantForToken(hash) {
    const info = this.tokensByHash.get(Buffer.from(hash).toString('hex'));
    return info && !info.revoked ? this.tenant(info.tenantId) : undefined;
  }

  close() {}
}
