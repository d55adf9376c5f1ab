/**
 * Push tokens Flui mints itself for a registry that authenticates with Docker's token scheme (the distribution
 * registry's `auth: token` mode, Harbor, and most self-hosted registries): a JWT signed with a key whose certificate
 * the registry trusts (`rootcertbundle`), granting `push,pull` on one repository until a near expiry. Each deploy gets
 * a token for its own app's repository, so the CI of one app cannot push another app's image, and a token that leaks
 * from a build log is worthless within hours.
 *
 * The registry checks: the signature against the certificate chain in the `x5c` header, `iss` against its configured
 * issuer, `aud` against its service name, `exp`/`nbf` against its clock, and `access` against the request.
 */
import { createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';

export interface TokenSigner {
  /** `iss`: the issuer the registry's `auth.token.issuer` names. */
  issuer: string;
  /** `aud`: the registry's `auth.token.service`. */
  service: string;
  key: KeyObject;
  /** The signing certificate first, then intermediates, as base64 DER (the JWT `x5c` header). */
  chain: string[];
  alg: 'RS256' | 'ES256' | 'ES384';
}

/**
 * A signer from PEM texts; throws an Error that says what is wrong (key type, a certificate that is not the key's).
 */
export function tokenSigner(opts: {
  issuer: string;
  service: string;
  keyPem: string;
  certificatePem: string;
}): TokenSigner {
  const key = createPrivateKey(opts.keyPem);
  const pems = opts.certificatePem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) throw new Error('the certificate file holds no PEM certificate');
  const certs = pems.map((pem) => new X509Certificate(pem));
  if (!certs[0]!.checkPrivateKey(key)) throw new Error("the first certificate is not the signing key's");
  const now = Date.now();
  if (Date.parse(certs[0]!.validTo) < now) throw new Error(`the certificate expired on ${certs[0]!.validTo}`);
  let alg: TokenSigner['alg'];
  if (key.asymmetricKeyType === 'rsa') alg = 'RS256';
  else if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') alg = 'ES256';
  else if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1') alg = 'ES384';
  else throw new Error(`a ${key.asymmetricKeyType} key cannot sign registry tokens: use RSA or EC P-256/P-384`);
  return { issuer: opts.issuer, service: opts.service, key, chain: certs.map((c) => c.raw.toString('base64')), alg };
}

export interface PushToken {
  token: string;
  /** ISO time after which the registry refuses it. */
  expiresAt: string;
}

const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

/**
 * A token granting `push,pull` on `repository` (the path inside the registry, e.g. `acme/web`) and nothing else, for
 * `ttlSeconds`. `subject` is who the registry logs as pushing (Flui names the app).
 */
export function mintPushToken(
  signer: TokenSigner,
  opts: { repository: string; subject: string; ttlSeconds: number; now?: number },
): PushToken {
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  const exp = now + Math.max(1, Math.floor(opts.ttlSeconds));
  const unsigned = `${part({ alg: signer.alg, typ: 'JWT', x5c: signer.chain })}.${part({
    iss: signer.issuer,
    sub: opts.subject,
    aud: signer.service,
    exp,
    // A minute of leeway for a registry whose clock runs behind the worker's.
    nbf: now - 60,
    iat: now,
    jti: randomUUID(),
    access: [{ type: 'repository', name: opts.repository, actions: ['push', 'pull'] }],
  })}`;
  const hash = signer.alg === 'ES384' ? 'sha384' : 'sha256';
  const signature = sign(hash, Buffer.from(unsigned), {
    key: signer.key,
    // JWS wants ECDSA signatures as r||s, not DER.
    ...(signer.alg === 'RS256' ? {} : { dsaEncoding: 'ieee-p1363' as const }),
  });
  return { token: `${unsigned}.${signature.toString('base64url')}`, expiresAt: new Date(exp * 1000).toISOString() };
}
