// Tenant administration of the CLI, as the Rust host's `tenant create`: the component checks
// the profile and policy first, then the store creates the tenant and its first token (only
// the token's SHA-256 is stored).

import { generateToken, hashToken } from './store/common.mjs';

export class TenantError extends Error {}

/** Creates a tenant and answers it with its bearer token (shown once). */
export function createTenant(store, runtime, name, { profile = 'standard', defaultTeam } = {}) {
  const policy = { profile };
  if (defaultTeam !== undefined) policy['default-team'] = defaultTeam;
  try {
    runtime.effectivePolicy(policy);
  } catch (e) {
    throw new TenantError(`invalid policy: ${e.detail ?? e.message ?? e}`);
  }
  let tenant;
  try {
    tenant = store.createTenant(name, policy);
  } catch (e) {
    if (e.kind === 'already-exists') throw new TenantError(`tenant '${name}' already exists`);
    throw new TenantError(e.message);
  }
  const token = generateToken();
  store.addToken(tenant.id, hashToken(token));
  return { tenant, token };
}
