/**
 * CNI spec versions: which ones this plugin speaks, and which commands each
 * allows (CHECK since 0.4.0, STATUS and GC since 1.1.0). Versions before
 * 0.3.0 had a different result type and are not supported.
 */
import { CniCode, CniError } from './errors.js';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const CURRENT_VERSION: CniVersion = '1.1.0';

/**
 * What VERSION prints, whatever the environment's other variables and stdin say (stdin is read, then ignored).
 * The C front end prints the same bytes without starting node: scripts/gen-cni-shim-header.mjs copies this
 * string into its generated header at build time.
 */
export const VERSION_ANSWER = `${JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS })}\n`;

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

export function isSupported(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Compares two supported versions: negative, 0 or positive. */
export function compareVersions(a: CniVersion, b: CniVersion): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function atLeast(v: CniVersion, min: CniVersion): boolean {
  return compareVersions(v, min) >= 0;
}

/** The config's cniVersion as a supported version, or error 1 naming what is supported. */
export function checkVersion(raw: unknown): CniVersion {
  const supported = SUPPORTED_VERSIONS.join(', ');
  if (raw === undefined) {
    throw new CniError(CniCode.INCOMPATIBLE_VERSION,
      `the network config has no cniVersion (read as 0.1.0, which this plugin does not speak); set "cniVersion" to one of ${supported}`);
  }
  if (typeof raw !== 'string') {
    throw new CniError(CniCode.INCOMPATIBLE_VERSION, `cniVersion must be a string such as "1.1.0", got ${JSON.stringify(raw)}`);
  }
  if (!isSupported(raw)) {
    const why = SEMVER.test(raw) ? 'not supported' : 'not a version';
    throw new CniError(CniCode.INCOMPATIBLE_VERSION, `incompatible CNI versions: cniVersion "${raw}" is ${why}; this plugin supports ${supported}`);
  }
  return raw;
}

/** Error 1 unless the config's version allows the command. */
export function requireVersionFor(command: string, v: CniVersion, min: CniVersion): void {
  if (!atLeast(v, min)) {
    throw new CniError(CniCode.INCOMPATIBLE_VERSION,
      `config version ${v} does not allow ${command} (it needs cniVersion ${min} or later)`);
  }
}
