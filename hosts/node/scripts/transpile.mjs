#!/usr/bin/env node
// Transpiles the SCIM component the Rust build produced (the very file `host/build.rs` embeds
// in the scimlet binary) into gen/ with jco, and records its SHA-256 in gen/component.json so
// that tests and the differential test can show both hosts run the same bytes.
//
// usage: node scripts/transpile.mjs [COMPONENT.wasm]
//   default: $SCIMLET_COMPONENT, else $CARGO_TARGET_DIR (or the workspace's target/)
//   /guest/release/wasm32-wasip2/guest/scimlet_guest.wasm, where host/build.rs builds it.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { CONTRACT } from '../src/contract.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..');
const workspace = resolve(pkg, '../..');

export function defaultComponentPath(env = process.env) {
  const target = env.CARGO_TARGET_DIR ? resolve(env.CARGO_TARGET_DIR) : join(workspace, 'target');
  return join(target, 'guest', 'release', 'wasm32-wasip2', 'guest', 'scimlet_guest.wasm');
}

function main() {
  const source = resolve(process.argv[2] ?? process.env.SCIMLET_COMPONENT ?? defaultComponentPath());
  if (!existsSync(source)) {
    console.error(`no component at ${source}: build it first (cargo build -p scimlet builds it), or name one`);
    process.exit(1);
  }
  const bytes = readFileSync(source);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const out = join(pkg, 'gen');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const jco = join(pkg, 'node_modules', '@bytecodealliance', 'jco', 'dist', 'jco.js');
  // Instantiation mode: the host hands the imports in at each instantiation, so every tenant
  // gets instances whose store import is bound to that tenant alone.
  const run = spawnSync(process.execPath, [jco, 'transpile', source, '-o', out, '--name', 'scimlet',
    '--instantiation', 'sync', '--no-typescript', '--quiet'], { stdio: 'inherit' });
  if (run.status !== 0) {
    console.error(`jco transpile failed (exit ${run.status ?? run.signal})`);
    process.exit(1);
  }
  // The contract the component speaks, read from its export names (`scimlet:scim/handler@X`).
  const js = readFileSync(join(out, 'scimlet.js'), 'utf8');
  const speaks = js.match(/scimlet:scim\/handler@([0-9][^'"]*)/)?.[1] ?? null;
  writeFileSync(join(out, 'component.json'), JSON.stringify({ source, bytes: bytes.length, sha256, contract: speaks }, null, 2) + '\n');
  console.log(`transpiled ${source} (${bytes.length} bytes, sha256 ${sha256}, scimlet:scim@${speaks}) into gen/`);
  if (speaks !== CONTRACT) {
    console.error(`warning: the component speaks scimlet:scim@${speaks}, this Node host speaks @${CONTRACT}: it will refuse to load it`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
