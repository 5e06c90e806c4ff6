// The component in Node: the jco-transpiled core modules compiled once, instantiated per
// tenant with imports bound to that tenant's store (so no guest code path can name another
// tenant's data, and no instance ever serves two tenants), kept warm between requests.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as shim from '@bytecodealliance/preview2-shim';
import { CONTRACT, PACKAGE } from './contract.mjs';
import { StoreError } from './store/common.mjs';

const GEN = join(dirname(fileURLToPath(import.meta.url)), '..', 'gen');

/** Why a component call failed: `trap` (500) or `storage` (503, the store failed under it). */
export class GuestFault extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
  /** The host failure the client is answered with. */
  get failure() {
    return this.kind === 'storage' ? { tag: 'storage-unavailable' } : { tag: 'component-failed' };
  }
}

/** What the transpile step recorded about the component: its source path, size and SHA-256. */
export function componentInfo(dir = GEN) {
  return JSON.parse(readFileSync(join(dir, 'component.json'), 'utf8'));
}

/** WASI from preview2-shim, keyed `wasi:PKG/IFACE` as the transpiled code looks them up, with an
 * empty environment: the component is given none of the host process's variables. */
function wasiImports() {
  const kebab = (s) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const imports = {};
  for (const [pkg, ifaces] of Object.entries(shim)) {
    for (const [name, impl] of Object.entries(ifaces)) imports[`wasi:${pkg}/${kebab(name)}`] = impl;
  }
  imports['wasi:cli/environment'] = {
    getEnvironment: () => [],
    getArguments: () => [],
    initialCwd: () => undefined,
  };
  return imports;
}

/** Warm instances kept (each bound to one tenant), as the Rust host's default. */
const WARM_INSTANCES = 32;
/** An instance is replaced after this many calls, as in the Rust host. */
const MAX_USES = 10_000;

export class Runtime {
  /**
   * @param {object} o
   * @param {object} o.store   the backend (MemoryStore, SqliteStore or one of your own)
   * @param {(level: string, message: string, tenant: string|null) => void} [o.log]
   * @param {string} [o.dir]   the transpiled component (default: this package's gen/)
   */
  static async load({ store, log = defaultLog, dir = GEN } = {}) {
    const mod = await import(join(dir, 'scimlet.js'));
    const cores = new Map();
    const getCoreModule = (name) => {
      if (!cores.has(name)) cores.set(name, new WebAssembly.Module(readFileSync(join(dir, name))));
      return cores.get(name);
    };
    return new Runtime(mod.instantiate, getCoreModule, store, log, componentInfo(dir));
  }

  constructor(instantiate, getCoreModule, store, log, info) {
    this.instantiate = instantiate;
    this.getCoreModule = getCoreModule;
    this.store = store;
    this.log = log;
    this.info = info;
    this.wasi = wasiImports();
    /** tenant id -> { root, uses }, least recently used first. */
    this.warm = new Map();
    this.operator = this.instance(null);
    checkContract(this.operator.root);
    this.largeRoutes = this.operator.root.handler.largeBodyRoutes();
    this.pages = new Map();
  }

  /** A fresh instance whose store and log imports are bound to `tenant` (null: no tenant, for
   * the calls that need no data; its store refuses every call). */
  instance(tenant) {
    const imports = {
      ...this.wasi,
      [`${PACKAGE}/store`]: storeImports(this.store, tenant),
      [`${PACKAGE}/log`]: { emit: (level, message) => this.log(level, message, tenant) },
    };
    return { root: this.instantiate(this.getCoreModule, imports), uses: 0 };
  }

  /** Whether the route takes the large-body limit (`PUT /Groups/{id}`). */
  takesLargeBody(method, path) {
    const segs = path.replace(/^\//, '').split('/');
    return segs.length === 2 && this.largeRoutes.some((r) =>
      r.method === method && r.endpoint.toLowerCase() === segs[0].toLowerCase());
  }

  /** The component's SCIM error response for a failure the host detected (rendered once). */
  errorPage(failure) {
    const key = JSON.stringify(failure, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
    let page = this.pages.get(key);
    if (!page) {
      page = this.operator.root.operator.renderError(failure);
      this.pages.set(key, page);
    }
    return page;
  }

  /** Runs `call(root)` in a warm instance of the tenant; a trap discards the instance. */
  withTenant(tenantId, call) {
    let inst = this.warm.get(tenantId);
    if (inst) this.warm.delete(tenantId);
    else inst = this.instance(tenantId);
    let result;
    try {
      result = call(inst.root);
    } catch (e) {
      // A result error of the export (ComponentError with a payload) is an answer; anything
      // else trapped, and the instance's state is not to be trusted again.
      if (e && Object.hasOwn(e, 'payload')) {
        this.keep(tenantId, inst);
        throw e;
      }
      throw fault(e);
    }
    this.keep(tenantId, inst);
    return result;
  }

  keep(tenantId, inst) {
    if (++inst.uses >= MAX_USES) return;
    this.warm.set(tenantId, inst);
    if (this.warm.size > WARM_INSTANCES) this.warm.delete(this.warm.keys().next().value);
  }

  /** Serves one request (`handler.handle`) for the tenant. Throws a GuestFault. */
  handle(tenant, request) {
    const response = this.withTenant(tenant.id, (root) => root.handler.handle({
      ...request,
      ctx: { baseUrl: request.baseUrl, policy: JSON.stringify(tenant.policy ?? {}) },
    }));
    if (response.rest) response.rest = guardStream(response.rest);
    return response;
  }

  /** The effective policy of a stored one; throws `{status, detail}` when the component
   * refuses it. */
  effectivePolicy(policy) {
    try {
      return JSON.parse(this.operator.root.operator.effectivePolicy(JSON.stringify(policy)));
    } catch (e) {
      if (e && Object.hasOwn(e, 'payload')) throw e.payload;
      throw fault(e);
    }
  }
}

/** Refuses, in words an operator can act on, a component of another contract version. */
function checkContract(root) {
  const wanted = `${PACKAGE}/handler@${CONTRACT}`;
  if (root[wanted]) return;
  const found = Object.keys(root).find((k) => k.startsWith(`${PACKAGE}/handler@`));
  throw new Error(found
    ? `the component speaks ${PACKAGE}@${found.split('@')[1]}, this Node host speaks ${PACKAGE}@${CONTRACT}: build the component against the wit/ of this scimlet release`
    : `the component does not export ${wanted}, so it is not a scimlet SCIM component`);
}

/** The body stream's chunks; a trap while pulling is a GuestFault. */
function guardStream(stream) {
  return {
    nextChunk() {
      try {
        return stream.nextChunk();
      } catch (e) {
        if (e && Object.hasOwn(e, 'payload')) throw new GuestFault('storage', String(e.payload));
        throw fault(e);
      }
    },
    dispose() {
      stream[Symbol.dispose]?.();
    },
  };
}

function fault(e) {
  return e instanceof GuestFault ? e : new GuestFault('trap', e?.stack ?? String(e));
}

/** The contract's `store` import over a backend, for one tenant. Every answer is an explicit
 * `{tag: 'ok' | 'err'}` result; a backend that throws anything else is `unavailable`, never a
 * trap of the guest. */
function storeImports(store, tenant) {
  const call = (f) => {
    if (tenant === null) return { tag: 'err', val: { tag: 'unavailable', val: 'no tenant: this call has no store' } };
    try {
      return { tag: 'ok', val: f() };
    } catch (e) {
      if (e instanceof StoreError && e.kind === 'conflict') return { tag: 'err', val: { tag: 'conflict' } };
      if (e instanceof StoreError && e.kind === 'invalid') return { tag: 'err', val: { tag: 'invalid', val: e.message } };
      return { tag: 'err', val: { tag: 'unavailable', val: String(e?.message ?? e) } };
    }
  };
  const entry = (e) => e && { key: e.key, value: e.value, version: BigInt(e.version) };
  return {
    get: (key) => call(() => entry(store.get(tenant, key))),
    getMany: (keys) => call(() => store.getMany(tenant, keys).map(entry)),
    scan: (start, end, skip, limit, descending, keysOnly) => call(() => store.scan(tenant, {
      start, end, skip: skip > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_VALUE : Number(skip), limit, descending, keysOnly,
    }).map(entry)),
    count: (start, end) => call(() => BigInt(store.count(tenant, start, end))),
    commit: (checks, writes, events = []) => call(() => BigInt(store.commit(
      tenant,
      checks.map((c) => ({ key: c.key, version: c.version === undefined ? undefined : Number(c.version) })),
      writes.map((w) => (w.tag === 'put' ? { tag: 'put', key: w.val[0], value: w.val[1] } : { tag: 'delete', key: w.val })),
      events.map((e) => ({ kind: e.kind, data: e.data, previous: e.previous })),
    ))),
  };
}

const LEVELS = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };
const threshold = LEVELS[process.env.SCIMLET_NODE_LOG ?? 'warn'] ?? LEVELS.warn;

/** The component's log records on stderr, warnings and errors by default (SCIMLET_NODE_LOG). */
function defaultLog(level, message, tenant) {
  if ((LEVELS[level] ?? 4) >= threshold) {
    process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} tenant=${tenant ?? '-'} ${message}\n`);
  }
}
