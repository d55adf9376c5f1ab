/**
 * The deploy manifest: `kind: Application` (built from the user's repository by their CI) and `kind: CatalogApp`
 * (a ready image). The manifest never says which CI or builder produced the image: that is the worker's choice.
 *
 * These zod schemas are the single source of truth. Workflow code imports only the inferred *types* (zod must stay
 * out of the workflow isolate); validation happens here, at the edges.
 */
import { z } from 'zod';
import {
  describeUnsafeCharacter,
  DNS_LABEL,
  DNS_SUBDOMAIN,
  IMAGE_REFERENCE,
  IMAGE_REPOSITORY,
  SAFE_TEXT,
  SECRET_KEY,
} from './names.ts';

export const API_VERSION = 'flui.dev/v1';

/**
 * The base of every string in a manifest. Manifest strings reach CI files, command lines, API paths and Kubernetes
 * objects, so none may hold a character that changes how the text around it is read (names.ts: SAFE_TEXT). Checked
 * first and alone (`abort`): such a string gets this one message, which names the character, not also the field's
 * own pattern.
 */
const text = z.string().regex(SAFE_TEXT, {
  error: (issue) => describeUnsafeCharacter(String(issue.input)) ?? 'contains a character that is not allowed',
  abort: true,
});

/** Paths and references that a tool may receive as an argument of its own: a leading "-" would make it an option. */
const argument = text.regex(/^(?!-)/, {
  error: 'must not begin with "-", which a command line would read as an option',
  abort: true,
});

// RFC 1123 label, as Kubernetes requires for names of Deployments, Services and namespaces.
const dnsLabel = text.regex(
  DNS_LABEL,
  'must be 1 to 63 lowercase letters, digits and "-", starting and ending with a letter or digit',
);

const envName = text.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid environment variable name');

// host[:port]/path with lowercase path components, as the OCI distribution spec allows.
const imageRepository = argument.regex(
  IMAGE_REPOSITORY,
  'must be "registry-host[:port]/path", e.g. "ghcr.io/acme/hello" (lowercase path)',
);

// repository[:tag][@sha256:digest]
const imageReference = argument
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

/**
 * An environment variable: a literal value, or a reference to a key of a Kubernetes Secret in the app's namespace,
 * which the cluster resolves when it starts the pod, so the value never passes through Flui.
 */
export const secretKeyRefSchema = z.strictObject({
  /** The Secret, in the app's namespace. */
  name: text.regex(
    DNS_SUBDOMAIN,
    'must be a Kubernetes object name: up to 253 lowercase letters, digits, "-" and ".", starting and ending with a letter or digit',
  ),
  /** The key inside the Secret. */
  key: text
    .regex(SECRET_KEY, 'must be a Secret key: up to 253 letters, digits, "-", "_" and "."')
    .refine((k) => k !== '.' && k !== '..' && !k.startsWith('..'), 'must not be "." or "..", nor begin with ".."'),
});

const envValue = z.union([text, z.strictObject({ secretKeyRef: secretKeyRefSchema })], {
  error: 'must be a string, or { secretKeyRef: { name, key } } naming a key of a Kubernetes Secret',
});

const quantity = text.regex(
  /^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/,
  'must be a Kubernetes quantity such as "250m", "1" or "256Mi"',
);

const resourceList = z.strictObject({ cpu: quantity.optional(), memory: quantity.optional() });

const port = z.number().int().min(1).max(65535);

export const healthCheckSchema = z.strictObject({
  /** HTTP path probed for readiness; omit for a TCP check on the container port. */
  path: text.startsWith('/').optional(),
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
  env: z.record(envName, envValue).default({}),
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
      repository: argument
        .regex(/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/, 'must be "owner/name", e.g. "acme/hello"')
        .refine((r) => !['.', '..'].includes(r.split('/')[1] ?? ''), 'the repository name must not be "." or ".."'),
      branch: argument
        .min(1)
        .regex(/^(?!\/)(?!.*\.\.)(?!.*\/\/)[^\s~^:?*[\\]+(?<!\/)(?<!\.lock)$/, 'must be a valid git branch name')
        .default('main'),
      /** Build context, relative to the repository root. */
      context: argument
        .regex(/^(\.|[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*)$/, 'must be a relative path inside the repository')
        .refine((p) => !p.split('/').includes('..'), 'must not leave the repository')
        .default('.'),
      dockerfile: argument
        .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'must be a relative path inside the repository')
        .refine((p) => !p.split('/').includes('..'), 'must not leave the repository')
        .default('Dockerfile'),
      // A value ending in whitespace would reach the build changed: CI tools trim the lines they pass build args on.
      buildArgs: z
        .record(envName, text.regex(/(?<!\s)$/, 'must not end in whitespace, which CI tools strip before the build'))
        .default({}),
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
