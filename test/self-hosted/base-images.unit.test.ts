/** `flui base-images import`: its command line, and where a base image goes in the installation's registry. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { baseImageTarget, parse } from '../../src/cli/base-images.ts';
import { main } from '../../src/cli/main.ts';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s), isTTY: false }, out, err };
}

describe('flui base-images', () => {
  it('puts names without a registry where builds look for Docker Hub images, under the base registry', () => {
    assert.equal(baseImageTarget('node:20', '127.0.0.1:5001'), '127.0.0.1:5001/library/node:20');
    assert.equal(baseImageTarget('busybox', 'mirror.internal/hub'), 'mirror.internal/hub/library/busybox:latest');
    assert.equal(baseImageTarget('bitnami/redis:7', 'r.internal'), 'r.internal/bitnami/redis:7');
    assert.equal(baseImageTarget('r.internal:5000/base/node:20', undefined), 'r.internal:5000/base/node:20');
    assert.throws(() => baseImageTarget('node:20', undefined), /FLUI_BASE_REGISTRY is not set/);
  });

  it('takes exactly an archive and a name after "import", and refuses a malformed name', () => {
    assert.deepEqual(parse({ target: 'import', follow: false, args: ['a.tar', 'node:20'] }), {
      archive: 'a.tar',
      name: 'node:20',
    });
    assert.throws(() => parse({ target: 'export', follow: false, args: ['a', 'b'] }), /unknown sub-command/);
    assert.throws(() => parse({ target: 'import', follow: false, args: ['a.tar'] }), /usage/);
    assert.throws(() => parse({ target: 'import', follow: false, args: ['a.tar', 'Node:20'] }), /not an image name/);
  });

  it('exits 2 on a usage mistake or a missing archive, importing nothing', async () => {
    const a = io();
    assert.equal(await main(['base-images', 'import', 'x.tar'], a.io, {}), 2);
    assert.match(a.err.join(''), /usage: flui base-images import <archive> <name:tag>/);
    const b = io();
    assert.equal(await main(['base-images', 'import', 'x.tar', 'node:20', 'extra'], b.io, {}), 2);
    const c = io();
    assert.equal(await main(['base-images', 'import', '/nonexistent/x.tar', 'node:20', '--json'], c.io, {}), 2);
    assert.match(c.err.join(''), /does not exist/);
  });
});
