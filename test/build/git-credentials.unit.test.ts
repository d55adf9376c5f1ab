import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { builderSettings } from '../../src/ci/self-hosted/settings.ts';
import { parseGitCredentials } from '../../src/build/git-credentials.ts';
import { loadConfig } from '../../src/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'flui-git-credentials-'));
let n = 0;
function file(text: string): string {
  const path = join(dir, `credentials-${++n}`);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

describe('FLUI_GIT_CREDENTIALS_FILE (git credential-store format)', () => {
  it('reads one credential a host, percent-decoded, with its protocol; skips blanks and comments', () => {
    const { value, problems } = parseGitCredentials({
      FLUI_GIT_CREDENTIALS_FILE: file(
        '# builder tokens\n\nhttps://ci%40acme:p%3Ass%2Fw0rd@Git.Internal\r\nhttp://bot:tok@10.0.0.5:8080/\n',
      ),
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(value, {
      'git.internal': { username: 'ci@acme', password: 'p:ss/w0rd', protocol: 'https:' },
      '10.0.0.5:8080': { username: 'bot', password: 'tok', protocol: 'http:' },
    });
  });

  it('refuses malformed lines by line number, never echoing a password', () => {
    const secret = 'sup3r-secret-token';
    const path = file(
      [
        `git.internal:${secret}`,
        `ssh://git:${secret}@git.internal`,
        'https://git.internal',
        `https://u:${secret}@git.internal/acme/app.git`,
        `https://u:${secret}@other.internal`,
        `https://v:${secret}@other.internal`,
        `https://u:%E0%A4%A@third.internal`,
      ].join('\n'),
    );
    const { value, problems } = parseGitCredentials({ FLUI_GIT_CREDENTIALS_FILE: path });
    assert.deepEqual(Object.keys(value), ['other.internal']);
    assert.equal(problems.length, 6, problems.join('\n'));
    for (const [i, line] of [1, 2, 3, 4, 6, 7].entries()) {
      assert.match(problems[i]!, new RegExp(`^FLUI_GIT_CREDENTIALS_FILE: line ${line} of `));
    }
    assert.match(problems[1]!, /http\(s\)/);
    assert.match(problems[2]!, /no user name and password/);
    assert.match(problems[3]!, /host only/);
    assert.match(problems[4]!, /again/);
    for (const p of problems) assert.ok(!p.includes(secret), p);
  });

  it('an unreadable file is a configuration problem; the builder settings carry what the file holds', () => {
    assert.match(
      parseGitCredentials({ FLUI_GIT_CREDENTIALS_FILE: join(dir, 'missing') }).problems[0]!,
      /cannot read .*missing \(ENOENT\)/,
    );
    assert.throws(
      () => loadConfig({ FLUI_GIT_CREDENTIALS_FILE: join(dir, 'missing') }),
      /FLUI_GIT_CREDENTIALS_FILE: cannot read/,
    );
    const config = loadConfig({ FLUI_GIT_CREDENTIALS_FILE: file('https://u:p4ss@git.internal\n') });
    assert.deepEqual(builderSettings(config).gitAuth, {
      'git.internal': { username: 'u', password: 'p4ss', protocol: 'https:' },
    });
    assert.deepEqual(builderSettings(loadConfig({})).gitAuth, {});
  });
});
