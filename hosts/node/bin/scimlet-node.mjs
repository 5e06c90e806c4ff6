#!/usr/bin/env node
// scimlet-node: the SCIM component served from Node.js, with bearer-token tenants like the
// Rust host's `scimlet serve`.
//
//   scimlet-node serve [--listen 127.0.0.1:8080] [--data DIR] [--store sqlite|memory] [--public-url URL]
//   scimlet-node tenant create NAME [--profile standard|writer] [--default-team TEAM] [--data DIR]

import { chmodSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { Runtime } from '../src/runtime.mjs';
import { scimlet } from '../src/handler.mjs';
import { MemoryStore } from '../src/store/memory.mjs';
import { SqliteStore } from '../src/store/sqlite.mjs';
import { TenantError, createTenant } from '../src/tenants.mjs';

const USAGE = `usage:
  scimlet-node serve [--listen HOST:PORT] [--data DIR] [--store sqlite|memory] [--public-url URL]
  scimlet-node tenant create NAME [--profile PROFILE] [--default-team TEAM] [--data DIR]`;

class UsageError extends Error {}

/** `--name value` pairs after the positional words; unknown or valueless flags are refused. */
function parse(argv, allowed) {
  const words = [];
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { words.push(a); continue; }
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
    if (!allowed.includes(name)) throw new UsageError(`unknown option --${name}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    flags[name] = value;
  }
  return { words, flags };
}

/** The SQLite store in DIR (created 0700: it holds every provisioned person's name and
 * email), or an in-memory one. Its own file name, so a Rust host's data dir is never mixed up. */
function openStore(flags) {
  const kind = flags.store ?? process.env.SCIMLET_STORE ?? 'sqlite';
  if (kind === 'memory') return new MemoryStore();
  if (kind !== 'sqlite') throw new UsageError(`--store must be sqlite or memory, not ${kind}`);
  const dir = flags.data ?? process.env.SCIMLET_DATA ?? './scimlet-node-data';
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'scimlet-node.db');
  const store = new SqliteStore(path);
  chmodSync(path, 0o600);
  return store;
}

function parseListen(value) {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`--listen wants HOST:PORT, not ${value}`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

async function serve(argv) {
  const { words, flags } = parse(argv, ['listen', 'data', 'store', 'public-url']);
  if (words.length) throw new UsageError(`unexpected argument ${words[0]}`);
  const { host, port } = parseListen(flags.listen ?? process.env.SCIMLET_LISTEN ?? '127.0.0.1:8080');
  const store = openStore(flags);
  const runtime = await Runtime.load({ store });
  if (store.tenants().length === 0) {
    const { tenant, token } = createTenant(store, runtime, 'default');
    console.log(`Created tenant '${tenant.name}'. Its bearer token (shown only now; keep it secret):`);
    console.log(token);
  }
  const handler = await scimlet({ store, runtime, publicUrl: flags['public-url'] ?? process.env.SCIMLET_PUBLIC_URL });
  const server = createServer((req, res) => {
    if (req.url === '/healthz') return void res.end('ok');
    handler(req, res);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((ok, fail) => server.once('error', fail).listen(port, host, ok));
  const addr = server.address();
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  console.log(`scimlet-node serving SCIM at http://${shown}:${addr.port}/scim/v2 (component sha256 ${runtime.info.sha256})`);
  const stop = () => server.close(() => { store.close(); process.exit(0); });
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function tenant(argv) {
  const { words, flags } = parse(argv, ['profile', 'default-team', 'data', 'store']);
  if (words[0] !== 'create' || words.length !== 2) throw new UsageError('tenant create NAME');
  const store = openStore(flags);
  try {
    const runtime = await Runtime.load({ store });
    const { tenant: t, token } = createTenant(store, runtime, words[1], { profile: flags.profile, defaultTeam: flags['default-team'] });
    console.log(`Created tenant '${t.name}' (${t.id}). Its bearer token (shown only now; keep it secret):`);
    console.log(token);
  } finally {
    store.close();
  }
}

const [command, ...rest] = process.argv.slice(2);
try {
  if (command === 'serve') await serve(rest);
  else if (command === 'tenant') await tenant(rest);
  else throw new UsageError(command ? `unknown command ${command}` : 'no command');
} catch (e) {
  if (e instanceof UsageError) console.error(`scimlet-node: ${e.message}\n${USAGE}`);
  else if (e instanceof TenantError || e?.kind) console.error(`scimlet-node: ${e.message}`);
  else console.error(`scimlet-node: ${e?.message ?? e}`);
  process.exit(e instanceof UsageError ? 2 : 1);
}
