/**
 * Per-suite server lifecycle for node:test: start in `before`, stop in `after`, and hand the test a getter.
 *
 *   const registry = useServer(() => startRegistry());
 *   it('...', () => fetch(registry().url));
 */
import { after, before } from 'node:test';

export function useServer<T extends { stop(): Promise<void> }>(start: () => Promise<T>): () => T {
  let server: T | undefined;
  before(async () => {
    server = await start();
  });
  after(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error('server not started: call the getter inside a test, not at module load');
    return server;
  };
}
