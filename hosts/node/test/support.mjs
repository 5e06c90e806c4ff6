// Helpers of the Node host's tests: the CLI as a child process, and HTTP calls.

import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PKG = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = join(PKG, 'bin', 'scimlet-node.mjs');

/** Starts `scimlet-node serve` on a free port; answers its printed lines and URL. */
export async function startCli(args) {
  const child = spawn(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const deadline = Date.now() + 20_000;
  while (!/serving SCIM at (\S+)/.test(out)) {
    if (child.exitCode !== null) throw new Error(`scimlet-node exited ${child.exitCode}: ${err}`);
    if (Date.now() > deadline) throw new Error(`scimlet-node did not start: ${out} ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /serving SCIM at (\S+)/.exec(out)[1];
  return {
    url,
    lines: out.trimEnd().split('\n'),
    stderr: () => err,
    stop: () => new Promise((ok) => { child.once('exit', ok); child.kill('SIGTERM'); }),
  };
}

/** A SCIM call; answers status, headers and the parsed body (text when not JSON). */
export async function call(url, { method = 'GET', token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h['content-type'] ??= 'application/scim+json';
  const res = await fetch(url, { method, headers: h, body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, headers: res.headers, body: json };
}
