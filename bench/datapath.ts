/**
 * bench/datapath: per-packet cost of the pod-veth programs through
 * BPF_PROG_TEST_RUN with 10, 1,000 and 100,000 ipcache entries, beside an
 * empty tc program measured in the same run (the floor).
 *
 * Figures, not assertions: the machine is noisy, so every size alternates
 * floor and program runs and reports medians, and the ratio to the floor is
 * what should stay flat as the ipcache grows (LPM lookups are bounded by the
 * 32-bit key length, not by the number of entries).
 *
 *   node dist/bench/datapath.js [--repeat N] [--rounds N]
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ProgramInfo } from '../src/datapath/api.js';
import { openObject } from '../src/datapath/bpf-object.js';
import { ensureBpffsMounted, removePinDir } from '../src/datapath/bpffs.js';
import { loadLxc } from '../src/datapath/lxc.js';
import { parseIpv4, formatIpv4 } from '../src/datapath/maps/ipv4.js';
import { testRun } from '../src/datapath/test-run.js';
import { SluiceIdentityReserved } from '../src/datapath/generated/abi.js';
import { ipv4Frame } from '../test/helpers/packet.js';

const EMPTY_OBJECT = fileURLToPath(new URL('../../build/bpf/empty.o', import.meta.url));
const SIZES = [10, 1_000, 100_000] as const;
const BASE = parseIpv4('10.128.0.0');
const POD = formatIpv4(BASE); // the endpoint under test is the first /32

const { values: args } = parseArgs({
  options: { repeat: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '9' } },
});
const repeat = Number(args.repeat);
const rounds = Number(args.rounds);

function settle(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Median ns/packet of each program, runs interleaved so drift hits all alike. */
function measure(progs: ReadonlyArray<readonly [ProgramInfo, Buffer]>): number[] {
  const samples = progs.map(() => [] as number[]);
  // Round -1 warms caches and the JIT image and is not recorded.
  for (let r = -1; r < rounds; r++) {
    progs.forEach(([prog, data], i) => {
      const res = testRun(prog, { data, repeat });
      if (res.retval !== 0) throw new Error(`${prog.name}: retval ${res.retval}, expected TC_ACT_OK`);
      if (r >= 0) samples[i]?.push(res.durationNs);
    });
  }
  return samples.map(median);
}

function main(): void {
  ensureBpffsMounted();
  const pinRoot = `/sys/fs/bpf/sluice-bench-${process.pid}`;
  const empty = openObject(EMPTY_OBJECT);
  const lxc = loadLxc({ pinRoot, endpoint: { endpointId: 1, ipv4: BASE } });
  try {
    console.log(`bench/datapath: BPF_PROG_TEST_RUN, repeat ${repeat} x ${rounds} rounds (medians), TCP 64-byte frames`);
    console.log('ipcache entries | empty (floor) ns | from_container ns | to_container ns | from/floor | to/floor');
    let filled = 0;
    const ratios: number[] = [];
    for (const size of SIZES) {
      // Grow the ipcache to `size` /32s; the peer is always the newest entry,
      // and a /16 covering all of them makes the trie answer the longest match.
      const batch: [{ prefixlen: number; addr: number }, { identity: number; flags: number }][] = [];
      for (; filled < size; filled++) {
        batch.push([{ prefixlen: 32, addr: BASE + filled }, { identity: SluiceIdentityReserved.FIRST + (filled % 5000), flags: 0 }]);
      }
      lxc.maps.ipcache.updateBatch(batch);
      lxc.maps.ipcache.update({ prefixlen: 16, addr: BASE }, { identity: SluiceIdentityReserved.FIRST + 9999, flags: 0 });
      // Let the kernel finish the work a large insert leaves behind (element
      // caches refilled by kworkers), which otherwise lands in the first rounds.
      settle(1000);
      const peer = formatIpv4(BASE + filled - 1);
      const out = ipv4Frame({ src: POD, dst: peer }, { proto: 'tcp', sport: 40000, dport: 80, flags: 0x10 });
      const inb = ipv4Frame({ src: peer, dst: POD }, { proto: 'tcp', sport: 80, dport: 40000, flags: 0x10 });
      const [floor = NaN, from = NaN, to = NaN] = measure([[empty.program('empty'), out], [lxc.fromContainer, out], [lxc.toContainer, inb]]);
      const ratio = Math.max(from, to) / floor;
      ratios.push(ratio);
      console.log(`${String(size).padStart(15)} | ${floor.toFixed(0).padStart(16)} | ${from.toFixed(0).padStart(17)} | ${to.toFixed(0).padStart(15)} | ${(from / floor).toFixed(2).padStart(10)} | ${(to / floor).toFixed(2).padStart(8)}`);
    }
    const growth = (ratios[ratios.length - 1] ?? NaN) / (ratios[0] ?? NaN);
    console.log(`ratio growth from ${SIZES[0]} to ${SIZES[SIZES.length - 1]} entries: x${growth.toFixed(2)} (1.00 = flat)`);
  } finally {
    lxc.close();
    empty.close();
    removePinDir(pinRoot);
  }
}

main();
