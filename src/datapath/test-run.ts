/** BPF_PROG_TEST_RUN: a loaded program run on a crafted packet. */
import { constants } from 'node:os';

import { addon } from './addon.js';
import type { ProgramInfo, TestRunOptions, TestRunResult } from './api.js';
import { BpfError, isBpfError } from './errors.js';

const ETH_HLEN = 14;
/** Measured on 6.18: skb test runs refuse these ethertypes without a full fixed L3 header. */
const MIN_L3: ReadonlyMap<number, { name: string; bytes: number }> = new Map([
  [0x0800, { name: 'IPv4', bytes: 20 }],
  [0x86dd, { name: 'IPv6', bytes: 40 }],
]);

/**
 * Runs `prog` on opts.data (`repeat` times, default 1) and returns its return
 * value, the kernel's average ns per run and the packet as the program left it
 * (trimmed to the length the kernel reports).
 */
export function testRun(prog: ProgramInfo, opts: TestRunOptions): TestRunResult {
  const repeat = opts.repeat ?? 1;
  const dataOutSize = opts.dataOutSize ?? opts.data.length + 256;
  try {
    return addon().testRun(prog.fd, opts.data, opts.ctx, repeat, dataOutSize);
  } catch (e) {
    const hint = isBpfError(e) && e.errno === constants.errno.EINVAL ? shortFrameHint(opts.data) : undefined;
    if (hint === undefined || !isBpfError(e)) throw e;
    throw new BpfError({ errno: e.errno, op: e.op, message: `${e.message} (${hint})` });
  }
}

// The kernel's EINVAL does not say why; a too-short frame is the usual reason.
function shortFrameHint(data: Buffer): string | undefined {
  if (data.length < ETH_HLEN) return `the kernel needs at least ${ETH_HLEN} bytes, got ${data.length}`;
  const l3 = MIN_L3.get(data.readUInt16BE(12));
  if (l3 !== undefined && data.length < ETH_HLEN + l3.bytes) {
    return `the kernel refuses an ${l3.name} ethertype frame shorter than ${ETH_HLEN + l3.bytes} bytes, got ${data.length}`;
  }
  return undefined;
}
