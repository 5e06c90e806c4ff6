// scimlet for Node.js: the SCIM component (transpiled by jco) with stores and an HTTP handler.
export { scimlet, bearerTenants, bearerToken } from './handler.mjs';
export { Runtime, componentInfo } from './runtime.mjs';
export { MemoryStore } from './store/memory.mjs';
export { SqliteStore } from './store/sqlite.mjs';
export { StoreError, generateToken, hashToken } from './store/common.mjs';
export { CONTRACT } from './contract.mjs';
