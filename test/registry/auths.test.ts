/** Which registry credentials the worker holds, by host: parsed from a docker config file and the legacy variables. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { authFor, parseRegistryAuths } from '../../src/registry/auths.ts';

function authFile(content: unknown): string {
  const path = join(tmpdir(), `flui-auths-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('registry credentials by host', () => {
  it('reads a docker config: auth or username/password per host, and realms trusted with them', () => {
    const file = authFile({
      auths: {
        'registry.example.com': { auth: Buffer.from('ci:p:a:ss').toString('base64') },
        'https://Other.example.com:5000/v2/': {
          username: 'u',
          password: 'pw',
          realms: ['https://auth.example.com/token'],
        },
      },
    });
    const { auths, problems } = parseRegistryAuths({ REGISTRY_AUTH_FILE: file });
    assert.deepEqual(problems, []);
    assert.deepEqual(authFor(auths, 'registry.example.com'), { username: 'ci', password: 'p:a:ss', realms: [] });
    assert.deepEqual(authFor(auths, 'other.example.com:5000'), {
      username: 'u',
      password: 'pw',
      realms: ['https://auth.example.com'],
    });
    assert.equal(authFor(auths, 'other.example.com'), undefined, 'another port is another registry');
    assert.equal(authFor(auths, 'evil.example.com'), undefined);
    assert.equal(authFor(auths, '__proto__'), undefined);
  });

  it('binds REGISTRY_USERNAME/REGISTRY_PASSWORD to the hosts in REGISTRY_HOST, and refuses them without one', () => {
    const env = { REGISTRY_USERNAME: 'u', REGISTRY_PASSWORD: 'secret-pw' };
    const unbound = parseRegistryAuths(env);
    assert.match(unbound.problems.join('\n'), /REGISTRY_HOST must name the registry host/);
    assert.ok(!unbound.problems.join('\n').includes('secret-pw'), 'a problem never echoes the password');
    const bound = parseRegistryAuths({ ...env, REGISTRY_HOST: '127.0.0.1:5001, registry.local' });
    assert.deepEqual(bound.problems, []);
    assert.deepEqual(Object.keys(bound.auths).sort(), ['127.0.0.1:5001', 'registry.local']);
    assert.match(parseRegistryAuths({ REGISTRY_USERNAME: 'u' }).problems[0]!, /must be set together/);
  });

  it('names what is wrong with a bad file, without its secrets', () => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /cannot read .* as a docker config JSON file/],
      [{ credsStore: 'desktop' }, /has no "auths" object/],
      [{ auths: { 'bad host/with path?': { auth: 'eDp5' } } }, /is not a registry host/],
      [
        { auths: { 'r.example.com': { auth: Buffer.from('nocolon').toString('base64') } } },
        /has no "auth" or username/,
      ],
      [
        { auths: { 'r.example.com': { username: 'u', password: 'p', realms: ['http://plain.example.com'] } } },
        /must be an https:\/\/ origin/,
      ],
    ];
    for (const [content, expected] of cases) {
      const { problems } = parseRegistryAuths({ REGISTRY_AUTH_FILE: authFile(content) });
      assert.match(problems.join('\n'), expected, JSON.stringify(content));
    }
  });
});
