/**
 * How metrics and rate-limit pacing name a CI credential without holding it: a token's label is a prefix of its
 * SHA-256, so two workers with the same token agree and the label reveals nothing usable.
 */
import { createHash } from 'node:crypto';

export function tokenClientId(token: string): string {
  return `token-${createHash('sha256').update(token).digest('hex').slice(0, 16)}`;
}
