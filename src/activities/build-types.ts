/**
 * The self-hosted build's activity, as the build workflow (src/workflows/build.ts) sees it. Its input is the job
 * (plain data from the manifest, no secret); the builder reads credentials from its own configuration.
 */
import type { BuildActivityResult, BuildJob } from '../workflows/build-contract.ts';

export interface BuildActivities {
  /** Fetch the source at the exact commit, build it with buildah, push every tag; the digest of the first. */
  build(job: BuildJob): Promise<BuildActivityResult>;
}
