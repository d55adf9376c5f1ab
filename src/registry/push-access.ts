/**
 * How an app's CI gets the right to push its image, per registry host: by default nothing long-lived and nothing
 * shared between apps.
 *
 * - `github-token` (ghcr.io's default): the job's own `GITHUB_TOKEN` with `packages: write`; nothing is stored.
 * - `aws-oidc`, `gcp-oidc`, `azure-oidc` (ECR, Artifact Registry, ACR): the job trades its OIDC token (`id-token:
 *   write`) for short-lived cloud credentials; the workflow file names only non-secret identifiers (a role, a
 *   workload identity provider, a client id), and the cloud's trust policy decides which repositories may assume them.
 * - `minted-token` (a registry using Docker's token scheme that trusts a certificate of Flui's): Flui signs a token
 *   for each deploy, `push,pull` on this app's repository only, expiring after the app's build and queue timeouts, and
 *   stores it as this app's secret right before the dispatch (src/registry/push-token.ts).
 * - `static` (explicit opt-in only): the worker's credential for that host (src/registry/auths.ts) stored as this app's secrets; long-lived and
 *   shared by every app that uses it.
 *
 * Configured with FLUI_REGISTRY_PUSH, a JSON object from registry host (`host[:port]`, as in image references) to
 * `{ "method": ..., ...identifiers }`. A host that is not configured gets its default when it has one (ghcr.io);
 * a cloud registry host names the identifiers it lacks; any other host is refused, so no credential goes anywhere
 * by accident.
 */
import { authFor, type RegistryAuths } from './auths.ts';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ServiceError } from '../errors.ts';
import { parseImageReference } from './reference.ts';
import { tokenSigner, type TokenSigner } from './push-token.ts';

export const PUSH_SETTINGS_VARIABLE = 'FLUI_REGISTRY_PUSH';

/** What the pipeline needs to know to log in: non-secret, safe to write into a workflow file. */
export type PushAccess =
  | { method: 'github-token'; registry: string }
  | {
      method: 'aws-oidc';
      registry: string;
      roleArn: string;
      region: string;
      /** The registry's account, what `amazon-ecr-login` logs in to. */
      accountId: string;
    }
  | { method: 'gcp-oidc'; registry: string; workloadIdentityProvider: string; serviceAccount: string }
  | {
      method: 'azure-oidc';
      registry: string;
      clientId: string;
      tenantId: string;
      subscriptionId: string;
      /** The ACR name (`<name>.azurecr.io`), what `az acr login --name` takes. */
      registryName: string;
    }
  | { method: 'minted-token'; registry: string }
  | { method: 'static'; registry: string }
  /** GitLab CI: the job's own short-lived CI_REGISTRY_USER/CI_REGISTRY_PASSWORD for the instance's registry. */
  | { method: 'ci-job-token'; registry: string };

export type PushMethod = PushAccess['method'];

/** A minted-token host's signing material (secret: stays in the worker). */
export interface PushTokenIssuer {
  signer: TokenSigner;
  /** Upper bound of a token's lifetime, whatever the app's timeouts. */
  maxTokenMinutes: number;
}

type HostSetting =
  | Exclude<PushAccess, { method: 'minted-token' }>
  | { method: 'minted-token'; registry: string; issuer: PushTokenIssuer };

export interface RegistryPushSettings {
  /** By host, lowercase. */
  hosts: Record<string, HostSetting>;
}

const ECR_HOST = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;
const GCP_HOST = /^(?:[a-z0-9-]+-docker\.pkg\.dev|(?:[a-z]+\.)?gcr\.io)$/;
const AZURE_HOST = /^([a-z0-9]{5,50})\.azurecr\.(?:io|cn|us)$/;
const HOST = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const text = (what: string, pattern: RegExp, example: string) =>
  z.string({ error: `needs "${what}" (e.g. ${example})` }).regex(pattern, `"${what}" must look like ${example}`);

const hostSchema = z.discriminatedUnion(
  'method',
  [
    z.strictObject({ method: z.literal('github-token') }),
    z.strictObject({
      method: z.literal('aws-oidc'),
      roleArn: text(
        'roleArn',
        /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/,
        'arn:aws:iam::123456789012:role/flui-push',
      ),
    }),
    z.strictObject({
      method: z.literal('gcp-oidc'),
      workloadIdentityProvider: text(
        'workloadIdentityProvider',
        /^projects\/\d+\/locations\/global\/workloadIdentityPools\/[a-z0-9-]{4,32}\/providers\/[a-z0-9-]{4,32}$/,
        'projects/123456789/locations/global/workloadIdentityPools/github/providers/github',
      ),
      serviceAccount: text(
        'serviceAccount',
        /^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.gserviceaccount\.com$/,
        'flui-push@my-project.iam.gserviceaccount.com',
      ),
    }),
    z.strictObject({
      method: z.literal('azure-oidc'),
      clientId: text('clientId', GUID, 'a GUID'),
      tenantId: text('tenantId', GUID, 'a GUID'),
      subscriptionId: text('subscriptionId', GUID, 'a GUID'),
    }),
    z.strictObject({
      method: z.literal('minted-token'),
      issuer: text('issuer', /^[\x21-\x7e]{1,200}$/, '"flui" (the registry\'s auth.token.issuer)'),
      service: text('service', /^[\x21-\x7e]{1,200}$/, '"registry.example.com" (the registry\'s auth.token.service)'),
      keyFile: text('keyFile', /^.+$/, '"/etc/flui/registry-token.key"'),
      certificateFile: text('certificateFile', /^.+$/, '"/etc/flui/registry-token.pem"'),
      maxTokenMinutes: z
        .number({ error: '"maxTokenMinutes" must be a whole number of minutes' })
        .int('"maxTokenMinutes" must be a whole number of minutes')
        .min(5, '"maxTokenMinutes" must be at least 5')
        .max(2880, '"maxTokenMinutes" must be at most 2880 (two days)')
        .default(360),
    }),
    z.strictObject({ method: z.literal('static') }),
    z.strictObject({ method: z.literal('ci-job-token') }),
  ],
  {
    error: (issue) =>
      issue.code === 'invalid_union'
        ? '"method" must be one of github-token, aws-oidc, gcp-oidc, azure-oidc, minted-token, static, ci-job-token'
        : undefined,
  },
);

/** Reads FLUI_REGISTRY_PUSH (and the key files it names); `problems` are sentences naming what is wrong. */
export function parseRegistryPushSettings(env: NodeJS.ProcessEnv): {
  value: RegistryPushSettings;
  problems: string[];
} {
  const value: RegistryPushSettings = { hosts: {} };
  const problems: string[] = [];
  const raw = env[PUSH_SETTINGS_VARIABLE]?.trim();
  if (!raw) return { value, problems };
  const say = (what: string) => problems.push(`${PUSH_SETTINGS_VARIABLE}: ${what}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    say(`must be a JSON object from registry host to push method, not valid JSON (${(err as Error).message})`);
    return { value, problems };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    say('must be a JSON object from registry host to push method, e.g. {"ghcr.io":{"method":"github-token"}}');
    return { value, problems };
  }
  for (const [rawHost, entry] of Object.entries(parsed)) {
    const host = rawHost.toLowerCase();
    if (!HOST.test(host)) {
      say(`"${rawHost}" is not a registry host (host or host:port, as in image references)`);
      continue;
    }
    const result = hostSchema.safeParse(entry);
    if (!result.success) {
      say(`${host}: ${result.error.issues[0]!.message}`);
      continue;
    }
    const setting = result.data;
    switch (setting.method) {
      case 'aws-oidc': {
        const ecr = ECR_HOST.exec(host);
        if (!ecr) {
          say(`${host}: aws-oidc works with Amazon ECR hosts (<account>.dkr.ecr.<region>.amazonaws.com)`);
          continue;
        }
        const [, accountId, region] = ecr as unknown as [string, string, string];
        value.hosts[host] = { method: 'aws-oidc', registry: host, roleArn: setting.roleArn, region, accountId };
        break;
      }
      case 'azure-oidc': {
        const registryName = AZURE_HOST.exec(host)?.[1];
        if (!registryName) {
          say(`${host}: azure-oidc works with Azure Container Registry hosts (<name>.azurecr.io)`);
          continue;
        }
        const { clientId, tenantId, subscriptionId } = setting;
        value.hosts[host] = { method: 'azure-oidc', registry: host, clientId, tenantId, subscriptionId, registryName };
        break;
      }
      case 'minted-token': {
        let keyPem: string;
        let certificatePem: string;
        try {
          keyPem = readFileSync(setting.keyFile, 'utf8');
          certificatePem = readFileSync(setting.certificateFile, 'utf8');
        } catch (err) {
          say(`${host}: cannot read the token signing files: ${(err as Error).message}`);
          continue;
        }
        try {
          const signer = tokenSigner({ issuer: setting.issuer, service: setting.service, keyPem, certificatePem });
          value.hosts[host] = {
            method: 'minted-token',
            registry: host,
            issuer: { signer, maxTokenMinutes: setting.maxTokenMinutes },
          };
        } catch (err) {
          say(
            `${host}: ${setting.keyFile} and ${setting.certificateFile} cannot sign tokens: ${(err as Error).message}`,
          );
        }
        break;
      }
      default:
        value.hosts[host] = { ...setting, registry: host } as HostSetting;
    }
  }
  return { value, problems };
}

/** Each `static` host needs a credential of its own among the worker's registry credentials: names those without. */
export function staticHostsWithoutCredential(push: RegistryPushSettings, auths: RegistryAuths): string[] {
  return Object.values(push.hosts)
    .filter((h) => h.method === 'static' && !authFor(auths, h.registry))
    .map(
      (h) =>
        `FLUI_REGISTRY_PUSH: ${h.registry} has "method": "static" but the worker holds no credential for it ` +
        `(add it to REGISTRY_AUTH_FILE, or set REGISTRY_HOST=${h.registry} with REGISTRY_USERNAME and REGISTRY_PASSWORD)`,
    );
}

function misconfigured(message: string, hint: string): ServiceError {
  return new ServiceError({ service: 'Registry', kind: 'misconfigured', message, hint });
}

/**
 * How the CI of an app whose image goes to `imageRepository` logs in to its registry. Throws a `misconfigured`
 * ServiceError, naming the variable and an example, for a host without a usable setting.
 */
export function pushAccessFor(settings: RegistryPushSettings | undefined, imageRepository: string): PushAccess {
  const host = parseImageReference(imageRepository).host.toLowerCase();
  const setting = settings?.hosts[host];
  if (setting?.method === 'minted-token') return { method: 'minted-token', registry: setting.registry };
  if (setting) return setting;
  if (host === 'ghcr.io') return { method: 'github-token', registry: host };
  const example = (entry: object) => `e.g. ${PUSH_SETTINGS_VARIABLE}='${JSON.stringify({ [host]: entry })}'`;
  if (ECR_HOST.test(host)) {
    throw misconfigured(
      `${host} is an Amazon ECR registry, and the worker has no IAM role for the CI to assume with OIDC`,
      `set ${example({ method: 'aws-oidc', roleArn: `arn:aws:iam::${ECR_HOST.exec(host)![1]}:role/flui-push` })}`,
    );
  }
  if (GCP_HOST.test(host)) {
    throw misconfigured(
      `${host} is a Google Artifact Registry host, and the worker has no workload identity provider for the CI`,
      `set ${example({
        method: 'gcp-oidc',
        workloadIdentityProvider: 'projects/123456789/locations/global/workloadIdentityPools/github/providers/github',
        serviceAccount: 'flui-push@my-project.iam.gserviceaccount.com',
      })}`,
    );
  }
  if (AZURE_HOST.test(host)) {
    throw misconfigured(
      `${host} is an Azure Container Registry, and the worker has no federated identity for the CI`,
      `set ${example({ method: 'azure-oidc', clientId: '<GUID>', tenantId: '<GUID>', subscriptionId: '<GUID>' })}`,
    );
  }
  throw misconfigured(
    `the worker has no push method for the registry ${host}, so it gives the CI no credential for it`,
    `configure one in ${PUSH_SETTINGS_VARIABLE}, e.g. ${PUSH_SETTINGS_VARIABLE}='${JSON.stringify({ [host]: { method: 'minted-token', issuer: '...', service: '...', keyFile: '...', certificateFile: '...' } })}', ` +
      `or opt in to storing REGISTRY_USERNAME/REGISTRY_PASSWORD with {"${host}":{"method":"static"}}`,
  );
}

/** The signing material of a minted-token host (only `pushAccessFor`'s minted-token hosts have one). */
export function pushTokenIssuer(settings: RegistryPushSettings | undefined, registry: string): PushTokenIssuer {
  const setting = settings?.hosts[registry.toLowerCase()];
  if (setting?.method !== 'minted-token') {
    throw misconfigured(`the registry ${registry} has no token signing key`, `check ${PUSH_SETTINGS_VARIABLE}`);
  }
  return setting.issuer;
}
