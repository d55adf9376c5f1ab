import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freePort } from '../../dev/process.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { connectNative } from '../../src/temporal-connection.ts';

describe('connecting a worker or a builder to Temporal', () => {
  it('names the address, whether it was the default, and the next step when nothing answers', async () => {
    const address = `127.0.0.1:${await freePort()}`; // nothing listens there
    const explicit = loadConfig({ TEMPORAL_ADDRESS: address }).temporal;
    await assert.rejects(connectNative(explicit, 'Start Temporal first.'), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(
        err.message,
        new RegExp(`^cannot reach Temporal at ${address.replaceAll('.', '\\.')}: .+\\. Start Temporal first\\.$`),
      );
      assert.doesNotMatch(err.message, /the default/);
      return true;
    });
    const defaulted = { ...explicit, addressIsDefault: true };
    await assert.rejects(connectNative(defaulted, 'Set it.'), /\(the default: TEMPORAL_ADDRESS is not set\): /);
  });
});
