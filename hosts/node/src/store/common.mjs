// What every Node backend shares: the contract's errors and argument checks, the tenant
// registry's names and ids, and bearer tokens (the Rust host's formats, so operators see the
// same shapes from both hosts).

import { createHash, randomBytes } from 'node:crypto';
import { compareKeys } from '../keys.mjs';

/** Why a store call failed. `kind` is the contract's (`conflict`, `unavailable`, `invalid`) or
 * the registry's own (`not-found`, `already-exists`). */
export class StoreError extends Error {
  constructor(kind, message = kind) {
    super(message);
    this.name = 'StoreError';
    this.kind = kind;
  }
}

export const conflict = () => new StoreError('conflict', 'conflicting concurrent write');
export const invalid = (why) => new StoreError('invalid', why);

/** The change kinds of WIT 0.3 `event-kind`, as the component's enum names them. */
export const EVENT_KINDS = [
  'user-created', 'user-updated', 'user-deactivated', 'user-reactivated', 'user-deleted',
  'group-created', 'group-linked', 'group-updated', 'group-deleted', 'group-unlinked',
  'group-member-added', 'group-member-removed',
];

export function checkKey(key) {
  if (typeof key !== 'string' || key.length === 0) throw invalid('empty key');
}

export function checkRange(start, end) {
  if (compareKeys(start, end) > 0) {
    throw invalid(`range start ${JSON.stringify(start)} is after end ${JSON.stringify(end)}`);
  }
}

/** Validates everything a commit names before any backend starts work, so an invalid commit
 * writes nothing. */
export function checkCommit(checks, writes, events) {
  for (const c of checks) checkKey(c.key);
  for (const w of writes) {
    if (w.tag === 'put') {
      checkKey(w.key);
      if (!(w.value instanceof Uint8Array)) throw invalid('a put needs a byte value');
    } else if (w.tag === 'delete') {
      checkKey(w.key);
    } else {
      throw invalid(`unknown write ${JSON.stringify(w.tag)}`);
    }
  }
  if (events.length > 0 && writes.length === 0) {
    throw invalid('a commit without writes cannot carry events');
  }
  for (const e of events) {
    if (!EVENT_KINDS.includes(e.kind)) throw invalid(`unknown event kind ${JSON.stringify(e.kind)}`);
    if (typeof e.data !== 'string') throw invalid('event data must be a string');
  }
}

/** Tenant names are `[A-Za-z0-9._-]{1,64}` and never shaped like a tenant id. */
export function checkTenantName(name) {
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
    throw invalid(`tenant name ${JSON.stringify(name)} must be 1 to 64 of [A-Za-z0-9._-]`);
  }
  if (looksLikeTenantId(name)) {
    throw invalid(`tenant name ${JSON.stringify(name)} has the shape of a tenant id`);
  }
}

export const looksLikeTenantId = (s) => /^t_[0-9a-fA-F]{16}$/.test(s);

export function checkPolicy(policy) {
  if (policy === null || typeof policy !== 'object' || Array.isArray(policy)) {
    throw invalid('policy must be a JSON object');
  }
}

export const newTenantId = () => `t_${randomBytes(8).toString('hex')}`;
export const newTokenId = () => `k_${randomBytes(8).toString('hex')}`;
export const unixNow = () => Math.floor(Date.now() / 1000);

/** Prefix of every bearer token, so that leaked tokens are recognisable by secret scanners. */
export const TOKEN_PREFIX = 'scimlet_';

/** `scimlet_` + 43 characters of unpadded base64url of 32 random bytes. */
export function generateToken() {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

/** SHA-256 of the token as presented; only this hash is ever stored. */
export function hashToken(token) {
  return createHash('sha256').update(token, 'utf8').digest();
}
