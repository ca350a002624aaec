/**
 * BpfError: every failure of the native addon, as data. The addon builds one
 * through the factory registered in addon.ts, so callers catch a single class
 * with errno, code, the operation and — for a failed load — the verifier log.
 */
import { constants } from 'node:os';

/** What the addon reports about a failure (see native/src/common.h). */
export interface BpfErrorDetails {
  /** Positive errno, or a libbpf code (4000+). */
  readonly errno: number;
  /** The operation that failed, e.g. 'open', 'load', 'map_update', 'tc_attach'. */
  readonly op: string;
  readonly message: string;
  readonly path?: string;
  readonly ifname?: string;
  readonly netns?: string;
  /** The kernel verifier's log of a rejected program. */
  readonly verifierLog?: string;
  /** libbpf's own messages printed during the call. */
  readonly libbpfLog?: string;
  /** Batch operations: entries written before the failure. */
  readonly applied?: number;
}

// Codes that os.constants.errno does not know: the kernel-internal ENOTSUPP
// (returned by bpf() for unsupported batch ops) and libbpf's LIBBPF_ERRNO__*.
const EXTRA_CODES: ReadonlyMap<number, string> = new Map([
  [524, 'ENOTSUPP'],
  [4000, 'LIBBPF_ERRNO__LIBELF'],
  [4001, 'LIBBPF_ERRNO__FORMAT'],
  [4002, 'LIBBPF_ERRNO__KVERSION'],
  [4003, 'LIBBPF_ERRNO__ENDIAN'],
  [4004, 'LIBBPF_ERRNO__INTERNAL'],
  [4005, 'LIBBPF_ERRNO__RELOC'],
  [4006, 'LIBBPF_ERRNO__LOAD'],
  [4007, 'LIBBPF_ERRNO__VERIFY'],
  [4008, 'LIBBPF_ERRNO__PROG2BIG'],
  [4009, 'LIBBPF_ERRNO__KVER'],
  [4010, 'LIBBPF_ERRNO__PROGTYPE'],
  [4011, 'LIBBPF_ERRNO__WRNGPID'],
  [4012, 'LIBBPF_ERRNO__INVSEQ'],
  [4013, 'LIBBPF_ERRNO__NLPARSE'],
]);

// Linux has aliases (ENOTSUP = EOPNOTSUPP, EWOULDBLOCK = EAGAIN, EDEADLOCK =
// EDEADLK); these names win.
const PREFERRED = new Set(['EOPNOTSUPP', 'EAGAIN', 'EDEADLK']);

const ERRNO_CODES: ReadonlyMap<number, string> = (() => {
  const m = new Map<number, string>();
  for (const [name, n] of Object.entries(constants.errno)) {
    if (!m.has(n) || PREFERRED.has(name)) m.set(n, name);
  }
  return m;
})();

/** 'ENOENT' for 2, 'ENOTSUPP' for 524, 'E<n>' when unknown. */
export function errnoCode(errno: number): string {
  return EXTRA_CODES.get(errno) ?? ERRNO_CODES.get(errno) ?? `E${errno}`;
}

export class BpfError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly op: string;
  // Optional fields are `declare`d so that an absent one is not even an own
  // property (no `ifname: undefined` in logs or spreads).
  declare readonly path?: string;
  declare readonly ifname?: string;
  declare readonly netns?: string;
  declare readonly verifierLog?: string;
  declare readonly libbpfLog?: string;
  declare readonly applied?: number;

  constructor(details: BpfErrorDetails) {
    super(details.message);
    this.name = 'BpfError';
    this.errno = details.errno;
    this.code = errnoCode(details.errno);
    this.op = details.op;
    if (details.path !== undefined) this.path = details.path;
    if (details.ifname !== undefined) this.ifname = details.ifname;
    if (details.netns !== undefined) this.netns = details.netns;
    if (details.verifierLog !== undefined) this.verifierLog = details.verifierLog;
    if (details.libbpfLog !== undefined) this.libbpfLog = details.libbpfLog;
    if (details.applied !== undefined) this.applied = details.applied;
  }

  /** The same error, reporting `applied` entries written (batch fallbacks). */
  withApplied(applied: number): BpfError {
    // Own fields carry over; message is not enumerable, so it is passed on.
    return new BpfError({ ...this, message: this.message, applied });
  }
}

export function isBpfError(e: unknown): e is BpfError {
  return e instanceof BpfError;
}
