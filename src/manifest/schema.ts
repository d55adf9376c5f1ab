/**
 * The deploy manifest: `kind: Application` (built from the user's repository by their CI) and `kind: CatalogApp`
 * (a ready image). The manifest never says which CI or builder produced the image: that is the worker's choice.
 *
 * These zod schemas are the single source of truth. Workflow code imports only the inferred *types* (zod must stay
 * out of the workflow isolate); validation happens here, at the edges.
 */
import { z } from 'zod';
import { DNS_LABEL, IMAGE_REFERENCE, IMAGE_REPOSITORY } from './names.ts';

export const API_VERSION = 'flui.dev/v1';

// RFC 1123 label, as Kubernetes requires for names of Deployments, Services and namespaces.
const dnsLabel = z
  .string()
  .regex(DNS_LABEL, 'must be 1 to 63 lowercase letters, digits and "-", starting and ending with a letter or digit');

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid environment variable name');

// host[:port]/path with lowercase path components, as the OCI distribution spec allows.
const imageRepository = z
  .string()
  .regex(IMAGE_REPOSITORY, 'must be "registry-host[:port]/path", e.g. "ghcr.io/acme/hello" (lowercase path)');

// repository[:tag][@sha256:digest]
const imageReference = z
  .string()
  .regex(
    IMAGE_REFERENCE,
    'must be "registry-host[:port]/path[:tag][@sha256:digest]", e.g. "registry.example.com/library/redis:7.4"',
  )
  .refine(
    (ref) => {
      const m = IMAGE_REFERENCE.exec(ref);
      return !m || Boolean(m[3] || m[4]); // a malformed reference is the pattern's to report
    },
    { message: 'must name a tag or a digest, e.g. ":7.4" or "@sha256:..."' },
  );

const quantity = z
  .string()
  .regex(/^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/, 'must be a Kubernetes quantity such as "250m", "1" or "256Mi"');

const resourceList = z.strictObject({ cpu: quantity.optional(), memory: quantity.optional() });

const port = z.number().int().min(1).max(65535);

export const healthCheckSchema = z.strictObject({
  /** HTTP path probed for readiness; omit for a TCP check on the container port. */
  path: z.string().startsWith('/').optional(),
  port: port.optional(),
  initialDelaySeconds: z.number().int().min(0).max(3600).default(0),
  periodSeconds: z.number().int().min(1).max(3600).default(10),
  failureThreshold: z.number().int().min(1).max(100).default(3),
});

export const deployPolicySchema = z.enum(['supersede', 'queue']);

const deploySettings = z.strictObject({
  /** What a newer deploy of the same app does to one in flight. */
  policy: deployPolicySchema.default('supersede'),
  /** How long a rollout may go without progress before it is rolled back. */
  progressDeadlineSeconds: z.number().int().min(10).max(3600).default(300),
  /** How long a failed deploy waits for `flui retry` before it ends; 0 ends it at once. */
  retryWindowMinutes: z.number().int().min(0).max(10080).default(1440),
  /** How long a build may run, from dispatch to completion. */
  buildTimeoutMinutes: z.number().int().min(1).max(1440).default(60),
  /** How long a build may wait for a runner before the deploy fails. */
  queueTimeoutMinutes: z.number().int().min(1).max(1440).default(30),
});

const workloadFields = {
  /** Container port the app listens on; the Service exposes it. */
  port: port.default(8080),
  replicas: z.number().int().min(0).max(100).default(1),
  env: z.record(envName, z.string()).default({}),
  resources: z.strictObject({ requests: resourceList.optional(), limits: resourceList.optional() }).default({}),
  healthCheck: healthCheckSchema.optional(),
  deploy: deploySettings.prefault({}),
};

const metadata = z.strictObject({
  name: dnsLabel,
  namespace: dnsLabel.default('default'),
});

export const applicationSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('Application'),
  metadata,
  spec: z.strictObject({
    source: z.strictObject({
      /** GitHub-style "owner/name". */
      repository: z.string().regex(/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/, 'must be "owner/name", e.g. "acme/hello"'),
      branch: z
        .string()
        .min(1)
        .regex(/^(?!\/)(?!.*\.\.)(?!.*\/\/)[^\s~^:?*[\\]+(?<!\/)(?<!\.lock)$/, 'must be a valid git branch name')
        .default('main'),
      /** Build context, relative to the repository root. */
      context: z
        .string()
        .regex(/^(\.|[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*)$/, 'must be a relative path inside the repository')
        .refine((p) => !p.split('/').includes('..'), 'must not leave the repository')
        .default('.'),
      dockerfile: z
        .string()
        .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'must be a relative path inside the repository')
        .refine((p) => !p.split('/').includes('..'), 'must not leave the repository')
        .default('Dockerfile'),
      buildArgs: z.record(envName, z.string()).default({}),
    }),
    image: z.strictObject({
      /** Where the CI pushes the image; tagged with the commit SHA, deployed by digest. */
      repository: imageRepository,
    }),
    ...workloadFields,
  }),
});

export const catalogAppSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('CatalogApp'),
  metadata,
  spec: z.strictObject({
    /** A ready image, by tag (resolved to its digest at deploy time) or by digest. */
    image: imageReference,
    ...workloadFields,
  }),
});

export const manifestSchema = z.discriminatedUnion('kind', [applicationSchema, catalogAppSchema]);

export type Application = z.infer<typeof applicationSchema>;
export type CatalogApp = z.infer<typeof catalogAppSchema>;
export type Manifest = z.infer<typeof manifestSchema>;
export type HealthCheck = z.infer<typeof healthCheckSchema>;
export type DeployPolicy = z.infer<typeof deployPolicySchema>;
/** The part of a manifest that describes the running workload, whatever produced its image. */
export type Workload = Pick<Manifest['spec'], 'port' | 'replicas' | 'env' | 'resources' | 'healthCheck' | 'deploy'>;
