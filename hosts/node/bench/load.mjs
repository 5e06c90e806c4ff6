#!/usr/bin/env node
// A small closed-loop load generator for comparing hosts: C keep-alive connections each send
// the scenario's request, wait for the answer, and send the next, for D seconds. Prints
// requests per second and latency percentiles. Loopback only.
//
// usage: node bench/load.mjs URL TOKEN [--scenario get|filter|create] [--connections 16] [--seconds 10]
//   URL: a SCIM base, e.g. http://127.0.0.1:8080/scim/v2

import http from 'node:http';

const [url, token, ...rest] = process.argv.slice(2);
const opt = { scenario: 'get', connections: '16', seconds: '10' };
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];
if (!url || !token || !/^http:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]/.test(url)) {
  console.error('usage: node bench/load.mjs http://127.0.0.1:PORT/scim/v2 TOKEN [--scenario get|filter|create] [--connections N] [--seconds S]');
  process.exit(2);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(opt.connections) });
const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' };
const run = `${process.pid}-${Date.now()}`;

function send(method, path, body) {
  return new Promise((ok, fail) => {
    const req = http.request(url + path, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d)).on('end', () => ok({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

// Setup: 200 users to read, the same for every host.
const ids = [];
for (let i = 0; i < 200; i++) {
  const r = await send('POST', '/Users', JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: `bench-${run}-${i}@example.com`, name: { givenName: 'B', familyName: `${i}` } }));
  if (r.status !== 201) throw new Error(`setup: ${r.status} ${r.body}`);
  ids.push(JSON.parse(r.body).id);
}
let n = 0;
const scenarios = {
  get: () => send('GET', `/Users/${ids[n++ % ids.length]}`),
  filter: () => send('GET', `/Users?filter=${encodeURIComponent(`userName eq "bench-${run}-${n++ % ids.length}@example.com"`)}`),
  create: () => send('POST', '/Users', JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: `load-${run}-${n++}@example.com` })),
};
const next = scenarios[opt.scenario];
if (!next) throw new Error(`unknown scenario ${opt.scenario}`);
const expected = opt.scenario === 'create' ? 201 : 200;
const latencies = [];
let errors = 0;
const end = performance.now() + Number(opt.seconds) * 1000;
await Promise.all(Array.from({ length: Number(opt.connections) }, async () => {
  while (performance.now() < end) {
    const t = performance.now();
    const r = await next();
    latencies.push(performance.now() - t);
    if (r.status !== expected) errors++;
  }
}));
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))].toFixed(1);
const secs = Number(opt.seconds);
console.log(`${opt.scenario}: ${(latencies.length / secs).toFixed(0)} req/s over ${secs} s, ${opt.connections} connections, p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, ${errors} errors`);
agent.destroy();
process.exit(errors > 0 ? 1 : 0);
