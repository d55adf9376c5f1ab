/**
 * The install manifests (deploy/kubernetes/) as objects, for the tests: the worker's own (listed by the
 * kustomization) and the Role + RoleBinding applied in each namespace deploys may go to (lane/rbac.yaml).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const INSTALL_DIR = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url));
export const LANE_RBAC = join(INSTALL_DIR, 'lane', 'rbac.yaml');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export function readObjects(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    return doc.toJS() as K8sObject;
  });
}

/** Every object the kustomization lists, as written (before kustomize sets the namespace and labels). */
export function workerObjects(): K8sObject[] {
  const [kustomization] = readObjects(join(INSTALL_DIR, 'kustomization.yaml')) as unknown as [{ resources: string[] }];
  return kustomization.resources.flatMap((file) => readObjects(join(INSTALL_DIR, file)));
}

export function find<T = K8sObject>(objects: K8sObject[], kind: string, name?: string): T {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ''} in the install manifests`);
  return found as T;
}
