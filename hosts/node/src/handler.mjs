// The request handler: `scimlet({ store, resolveTenant })` answers SCIM below `basePath` as a
// `(req, res, next?)` function, so it mounts in Express and Connect (`app.use(handler)`) and
// serves `node:http` directly (`http.createServer(handler)`). The host's part only: the base
// path, body limits, the tenant, request ids; every SCIM rule and every error text comes from
// the component (`handler.handle`, `operator.render-error`).

import { randomBytes } from 'node:crypto';
import { GuestFault, Runtime } from './runtime.mjs';
import { hashToken } from './store/common.mjs';

/**
 * @param {object} o
 * @param {object} o.store  the backend (MemoryStore, SqliteStore, or your own with their methods)
 * @param {(req) => object|string|null|Promise<object|string|null>} o.resolveTenant
 *   the tenant of a request: `{ id, policy }`, or a host failure (`'missing-token'`,
 *   `'invalid-token'`, `'storage-unavailable'`, `'rate-limited'`, `'at-capacity'`); `null` is
 *   `'invalid-token'`. Default: the store's bearer tokens (`bearerTenants(store)`).
 * @param {string} [o.basePath='/scim/v2']  where SCIM lives; other paths go to `next()`, or get
 *   404 without one
 * @param {string} [o.publicUrl]  scheme and authority for `Location` (default: from `Host`)
 * @param {number} [o.maxBodyBytes=1 MiB]  413 beyond, except on the component's large routes
 * @param {number} [o.maxLargeBodyBytes=16 MiB]  the limit on `PUT /Groups/{id}`
 * @param {number} [o.requestTimeoutMs=30000]  a body not fully arrived by then gets 408
 * @param {(record) => void} [o.onAudit]  receives each write's provisioning record
 * @param {Runtime} [o.runtime]  a loaded runtime to share (default: loads this package's gen/)
 * @returns {Promise<Function>} the handler, with `.runtime`
 */
export async function scimlet(o) {
  const runtime = o.runtime ?? await Runtime.load({ store: o.store, log: o.log });
  const config = {
    basePath: (o.basePath ?? '/scim/v2').replace(/\/+$/, ''),
    publicUrl: o.publicUrl?.replace(/\/+$/, ''),
    maxBodyBytes: o.maxBodyBytes ?? 1 << 20,
    maxLargeBodyBytes: Math.max(o.maxLargeBodyBytes ?? 16 << 20, o.maxBodyBytes ?? 1 << 20),
    requestTimeoutMs: o.requestTimeoutMs ?? 30_000,
  };
  const resolveTenant = o.resolveTenant ?? bearerTenants(o.store);
  const handler = (req, res, next) => serve(runtime, config, resolveTenant, o.onAudit, req, res, next)
    .catch((e) => {
      // Nothing above throws by design; if something does, the client still gets an answer.
      process.stderr.write(`scimlet-node: unexpected ${e?.stack ?? e}\n`);
      if (!res.headersSent) send(res, runtime.errorPage({ tag: 'component-failed' }));
      else res.destroy();
    });
  handler.runtime = runtime;
  return handler;
}

/** The default tenant resolver: `Authorization: Bearer scimlet_…` (or Okta's bare token)
 * looked up by its SHA-256 among the store's active tokens. */
export function bearerTenants(store) {
  return (req) => {
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) return 'missing-token';
    try {
      return store.tenantForToken(hashToken(token)) ?? 'invalid-token';
    } catch (e) {
      process.stderr.write(`scimlet-node: token lookup failed: ${e?.message ?? e}\n`);
      return 'storage-unavailable';
    }
  };
}

/** `Bearer <token>`, or a bare token (Okta's "Header" mode); undefined when there is none. */
export function bearerToken(value) {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  const space = v.indexOf(' ');
  let token = v;
  if (space >= 0) {
    if (v.slice(0, space).toLowerCase() !== 'bearer') return undefined;
    token = v.slice(space + 1).trim();
  }
  return token.length > 0 ? token : undefined;
}

/** The host failures a tenant resolver may answer instead of a tenant. */
const TENANT_FAILURES = new Set(['missing-token', 'invalid-token', 'storage-unavailable', 'rate-limited', 'at-capacity']);

async function serve(runtime, config, resolveTenant, onAudit, req, res, next) {
  const requestId = saneRequestId(req.headers['x-request-id']) ?? randomBytes(16).toString('hex');
  res.setHeader('x-request-id', requestId);
  const url = req.originalUrl ?? req.url;
  const q = url.indexOf('?');
  const fullPath = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q + 1);
  const path = stripBase(fullPath, config.basePath);
  if (path === undefined) {
    if (next) return next();
    return send(res, runtime.errorPage({ tag: 'not-an-endpoint' }));
  }
  const limit = runtime.takesLargeBody(req.method, path) ? config.maxLargeBodyBytes : config.maxBodyBytes;
  const body = await readBody(req, limit, config.requestTimeoutMs);
  if (body.failure) {
    // The rest of the body is not read: close the connection rather than drain it.
    res.setHeader('connection', 'close');
    return send(res, runtime.errorPage(body.failure));
  }
  let tenant;
  try {
    tenant = await resolveTenant(req);
  } catch (e) {
    process.stderr.write(`scimlet-node: resolveTenant failed: ${e?.message ?? e}\n`);
    tenant = 'storage-unavailable';
  }
  if (tenant === null || tenant === undefined) tenant = 'invalid-token';
  if (typeof tenant === 'string' && !TENANT_FAILURES.has(tenant)) {
    process.stderr.write(`scimlet-node: resolveTenant answered ${JSON.stringify(tenant)}, not a tenant nor one of ${[...TENANT_FAILURES].join(', ')}\n`);
    tenant = 'component-failed';
  }
  if (typeof tenant === 'string') return send(res, runtime.errorPage({ tag: tenant }));
  if (typeof tenant.id !== 'string' || tenant.id === '') {
    process.stderr.write('scimlet-node: resolveTenant answered a tenant without an id\n');
    return send(res, runtime.errorPage({ tag: 'component-failed' }));
  }

  const headers = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    if (name !== 'authorization' && name !== 'x-request-id') headers.push([name, req.rawHeaders[i + 1]]);
  }
  headers.push(['x-request-id', requestId]);
  let response;
  try {
    response = runtime.handle(tenant, {
      method: req.method, path, query, headers, body: body.bytes,
      baseUrl: baseUrl(req, config),
    });
  } catch (e) {
    if (!(e instanceof GuestFault)) throw e;
    process.stderr.write(`scimlet-node: tenant ${tenant.name ?? tenant.id}: ${e.message}\n`);
    return send(res, runtime.errorPage(e.failure));
  }
  if (response.audit && onAudit) {
    try {
      onAudit({
        tenant: tenant.id, requestId, userAgent: req.headers['user-agent'], method: req.method, path,
        status: response.status, operation: JSON.parse(response.audit),
      });
    } catch (e) {
      process.stderr.write(`scimlet-node: onAudit failed: ${e?.message ?? e}\n`);
    }
  }
  send(res, response, !!response.rest);
  if (response.rest) await pump(response.rest, res);
}

/** Writes the status, headers and (first part of the) body; ends the response unless more
 * is to be streamed. */
function send(res, r, more = false) {
  res.statusCode = r.status;
  const byName = new Map();
  for (const [name, value] of r.headers) byName.set(name, [...(byName.get(name) ?? []), value]);
  for (const [name, values] of byName) {
    try {
      res.setHeader(name, values.length === 1 ? values[0] : values);
    } catch {
      // A header Node refuses (a bad character) is left out, as the Rust host does.
    }
  }
  if (more) res.write(r.body);
  else res.end(r.body);
}

/** Pulls a streamed body's chunks into the response, waiting for the client to take each; a
 * failure aborts the response, so the client sees a failed transfer, never a short document. */
async function pump(stream, res) {
  try {
    for (;;) {
      if (res.destroyed) return;
      const chunk = stream.nextChunk();
      if (chunk === undefined) return void res.end();
      if (!res.write(chunk)) await new Promise((ok) => { res.once('drain', ok); res.once('close', ok); });
    }
  } catch (e) {
    process.stderr.write(`scimlet-node: a streamed response failed: ${e?.message ?? e}\n`);
    res.destroy(e);
  } finally {
    stream.dispose();
  }
}

/** The whole request body up to `limit` bytes, or the host failure that ends the request. */
function readBody(req, limit, timeoutMs) {
  if (req.readableEnded) {
    // A body parser mounted before scimlet took the stream; only a raw Buffer can be used.
    if (Buffer.isBuffer(req.body)) {
      return req.body.length > limit ? { failure: { tag: 'payload-too-large', val: BigInt(limit) } } : { bytes: new Uint8Array(req.body) };
    }
    return req.complete && req.body === undefined ? { bytes: new Uint8Array(0) } : { failure: { tag: 'unreadable-body' } };
  }
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return { failure: { tag: 'payload-too-large', val: BigInt(limit) } };
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    const done = (result) => {
      clearTimeout(timer);
      req.removeListener('data', onData).removeListener('end', onEnd).removeListener('error', onError).removeListener('aborted', onError);
      if (result.failure) req.pause();
      resolve(result);
    };
    const onData = (chunk) => {
      size += chunk.length;
      if (size > limit) return done({ failure: { tag: 'payload-too-large', val: BigInt(limit) } });
      chunks.push(chunk);
    };
    const onEnd = () => done({ bytes: new Uint8Array(Buffer.concat(chunks, size)) });
    const onError = () => done({ failure: { tag: 'unreadable-body' } });
    const timer = setTimeout(() => done({ failure: { tag: 'body-timeout' } }), timeoutMs);
    req.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onError);
  });
}

function stripBase(path, base) {
  if (!path.startsWith(base)) return undefined;
  const rest = path.slice(base.length);
  if (rest === '') return '/';
  return rest.startsWith('/') ? rest : undefined;
}

function baseUrl(req, config) {
  if (config.publicUrl) return config.publicUrl + config.basePath;
  const scheme = req.socket?.encrypted ? 'https' : 'http';
  return `${scheme}://${req.headers.host ?? 'localhost'}${config.basePath}`;
}

/** The client's request id if it is 1 to 128 characters of a safe set (so it can go into logs
 * as is), as the Rust host keeps it. */
function saneRequestId(v) {
  return typeof v === 'string' && /^[A-Za-z0-9\-_.:/+=@]{1,128}$/.test(v) ? v : undefined;
}
