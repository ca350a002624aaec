/**
 * Credentials the harness makes for a control plane: the service-account
 * signing keypair (node:crypto, PEM files) and a static bearer-token file
 * that kube-apiserver reads with --token-auth-file. The apiserver's serving
 * certificate is not made here: given only --cert-dir, kube-apiserver writes
 * a self-signed CA and a serving cert signed by it (apiserver.crt holds the
 * cert followed by that CA), and reuses them on restart; see servingCaBundle.
 */
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ServiceAccountKeyFiles {
  /** --service-account-key-file (verification). */
  readonly publicKeyFile: string;
  /** --service-account-signing-key-file (issuing). */
  readonly privateKeyFile: string;
}

/** Writes a fresh RSA-2048 service-account keypair as PEM files into `dir`. */
export function writeServiceAccountKeys(dir: string): ServiceAccountKeyFiles {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const files = { publicKeyFile: join(dir, 'sa.pub'), privateKeyFile: join(dir, 'sa.key') };
  writeFileSync(files.publicKeyFile, publicKey, { mode: 0o600 });
  writeFileSync(files.privateKeyFile, privateKey, { mode: 0o600 });
  return files;
}

export interface StaticUser {
  readonly name: string;
  readonly uid: string;
  readonly groups: readonly string[];
  readonly token: string;
}

/** An unguessable bearer token (256 bits, hex). */
export function randomToken(): string {
  return randomBytes(32).toString('hex');
}

/**
 * Renders the --token-auth-file CSV: token,user,uid,"group1,group2".
 * Names must not contain quotes or commas: the apiserver's CSV parser would
 * split them, so they are rejected here with the offending value.
 */
export function renderTokenFile(users: readonly StaticUser[]): string {
  const safe = (v: string, what: string): string => {
    if (v === '' || /[",\n]/.test(v)) throw new Error(`token file: ${what} ${JSON.stringify(v)} is empty or has , " or newline`);
    return v;
  };
  return users
    .map((u) => {
      const groups = u.groups.map((g) => safe(g, 'group')).join(',');
      return `${safe(u.token, 'token')},${safe(u.name, 'user')},${safe(u.uid, 'uid')},"${groups}"\n`;
    })
    .join('');
}

/**
 * Reads the CA bundle a client needs to trust the self-signed apiserver:
 * the whole apiserver.crt (leaf + its CA), checked to parse as certificates.
 */
export function servingCaBundle(certDir: string): string {
  const pem = readFileSync(join(certDir, 'apiserver.crt'), 'utf8');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`${join(certDir, 'apiserver.crt')} holds no certificate`);
  for (const b of blocks) new X509Certificate(b);
  return pem;
}
