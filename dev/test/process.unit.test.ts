import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { describe, it } from 'node:test';
import { freePort } from '../process.ts';

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

describe('freePort', () => {
  it('hands out bindable ports below the kernel ephemeral range, never the same one twice', async () => {
    const [ephemeralLow = 0] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    const ports = [];
    for (let i = 0; i < 50; i++) ports.push(await freePort());
    assert.equal(new Set(ports).size, ports.length);
    for (const port of ports) assert.ok(port < ephemeralLow, `${port} is in the ephemeral range from ${ephemeralLow}`);
    // Each really binds: a server listens on all of them at once.
    const servers = await Promise.all(ports.map(listen));
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  it('skips a port another server holds', async () => {
    const taken: Server[] = [];
    try {
      // Hold 300 ports the function could pick; none of them may come back.
      for (let i = 0; taken.length < 300 && i < 2_000; i++) {
        const port = 20_000 + i;
        taken.push(await listen(port).catch(() => createServer()));
      }
      const held = new Set(taken.map((s) => (s.address() as { port: number } | null)?.port).filter(Boolean));
      for (let i = 0; i < 100; i++) assert.ok(!held.has(await freePort()));
    } finally {
      await Promise.all(taken.map((s) => new Promise((r) => (s.listening ? s.close(r) : r(undefined)))));
    }
  });
});
