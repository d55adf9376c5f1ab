/**
 * The pure parts of self-hosted build logs: the bounded tail the build workflow keeps (read by cursor), the batching
 * sender the build activity uses (ordered, resent after a failed send, never more than a batch's size), and the
 * redaction of the builder's secrets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LogSender, redactor } from '../../src/activities/build.ts';
import {
  buildRunUrl,
  buildWorkflowId,
  LogTail,
  MAX_LOG_BATCH_CHARS,
  type BuildLogBatch,
} from '../../src/workflows/build-contract.ts';

describe('LogTail', () => {
  it('returns what follows the cursor, and a cursor to continue from', () => {
    const tail = new LogTail(100);
    tail.append('one\n');
    const first = tail.read(undefined);
    assert.deepEqual(first, { text: 'one\n', cursor: '4' });
    assert.deepEqual(tail.read(first.cursor), { text: '', cursor: '4' });
    tail.append('two\n');
    assert.deepEqual(tail.read(first.cursor), { text: 'two\n', cursor: '8' });
  });

  it('keeps only its capacity and tells a reader who fell behind how much was dropped', () => {
    const tail = new LogTail(10);
    tail.append('0123456789abcdef');
    assert.equal(tail.end, 16);
    const read = tail.read('2');
    assert.equal(read.text, '[… 4 characters of earlier output dropped]\n6789abcdef');
    assert.equal(read.cursor, '16');
    // A reader that is up to date is told nothing.
    assert.deepEqual(tail.read('16'), { text: '', cursor: '16' });
  });

  it('limits one read and treats a malformed or future cursor safely', () => {
    const tail = new LogTail(1000);
    tail.append('x'.repeat(50));
    assert.deepEqual(tail.read('0', 20), { text: 'x'.repeat(20), cursor: '20' });
    assert.equal(tail.read('-5').text.length, 50);
    assert.equal(tail.read('abc').text.length, 50);
    assert.deepEqual(tail.read('999'), { text: '', cursor: '50' });
  });
});

describe('LogSender', () => {
  it('sends lines in order in batches no larger than the limit, numbered from 1', async () => {
    const sent: BuildLogBatch[] = [];
    const sender = new LogSender(
      async (b) => void sent.push(b),
      1,
      'builder-a',
      (t) => t,
    );
    const line = 'y'.repeat(1000);
    for (let i = 0; i < 100; i++) sender.line(line);
    await sender.close();
    assert.ok(sent.length >= 3, `${sent.length} batches`);
    assert.ok(sent.every((b) => b.text.length <= MAX_LOG_BATCH_CHARS));
    assert.deepEqual(
      sent.map((b) => b.seq),
      sent.map((_, i) => i + 1),
    );
    assert.equal(sent[0]!.builder, 'builder-a');
    assert.equal(sent.map((b) => b.text).join(''), `${line}\n`.repeat(100));
  });

  it('keeps text a failed send could not deliver and sends it next time, with the same sequence number', async () => {
    const sent: BuildLogBatch[] = [];
    let fail = true;
    const sender = new LogSender(
      async (b) => {
        if (fail) throw new Error('Temporal unavailable');
        sent.push(b);
      },
      2,
      'b',
      (t) => t,
    );
    sender.line('first');
    await sender.flush();
    assert.equal(sent.length, 0);
    fail = false;
    sender.line('second');
    await sender.close();
    assert.deepEqual(
      sent.map((b) => [b.seq, b.attempt, b.text]),
      [[1, 2, 'first\nsecond\n']],
    );
  });

  it('sends about once a second while lines trickle in', async () => {
    const sent: BuildLogBatch[] = [];
    const sender = new LogSender(
      async (b) => void sent.push(b),
      1,
      'b',
      (t) => t,
    );
    sender.line('a');
    sender.line('b');
    assert.equal(sent.length, 0);
    await sleep(1300);
    assert.deepEqual(
      sent.map((b) => b.text),
      ['a\nb\n'],
    );
    await sender.close();
  });
});

describe('redactor', () => {
  it('masks every secret, longest first, and ignores ones too short to mean anything', () => {
    const redact = redactor(['s3cr3t-password', 's3cr3t', 'ab', '']);
    assert.equal(redact('login s3cr3t-password then s3cr3t; ab stays'), 'login *** then ***; ab stays');
  });
});

describe('build ids and pages', () => {
  it('derives the build workflow id from the run key, one per deploy attempt', () => {
    assert.equal(buildWorkflowId('default.hello.abc123'), 'build-default.hello.abc123');
    assert.notEqual(buildWorkflowId('default.hello.abc123/2'), buildWorkflowId('default.hello.abc123'));
  });

  it("links the build's Web UI page, or says how to see it without one", () => {
    assert.equal(
      buildRunUrl({ base: 'http://127.0.0.1:8233', namespace: 'default' }, 'build-default.hello.abc/2', 'r1'),
      'http://127.0.0.1:8233/namespaces/default/workflows/build-default.hello.abc%2F2/r1/history',
    );
    assert.equal(buildRunUrl(undefined, 'build-x'), 'temporal workflow show --workflow-id build-x');
  });
});
