/**
 * The build engine for self-hosted builds: source at an exact commit, a real buildah build as root of a user
 * namespace, pushes, the digest. Knows nothing of Temporal: errors are service errors (src/errors.ts), a cancel is an
 * `AbortError`.
 */
export type { BuildSource, BuildSpec, BuilderSettings, BuildResult, BuildOptions } from './types.ts';
export { runBuild, checkSpec } from './build.ts';
export { resolveCommit } from './source.ts';
export { importBaseImage } from './import.ts';
export { defaultUserNamespace } from './sandbox.ts';
export { TAIL_LINES } from './logs.ts';
/** What `runBuild` and `importBaseImage` reject with on cancel (`name === 'AbortError'`). */
export { Aborted } from './process.ts';
