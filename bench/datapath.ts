/**
 * bench/datapath: per-packet cost of the pod-veth programs through
 * BPF_PROG_TEST_RUN with 10, 1,000 and 100,000 ipcache entries, beside an
 * empty tc program measured in the same run (the floor).
 *
 * Figures, not assertions: the machine is noisy, so every size alternates
 * floor and program runs and reports medians, and the ratio to the floor is
 * what should stay flat as the ipcache grows. Two paths per size:
 *  - established: TCP ACKs of a tracked connection, both directions (the
 *    common case: endpoint + conntrack lookups, no ipcache, no policy);
 *  - SYN: a connection opening from an endpoint isolated for egress, allowed
 *    by a port rule of the peer's identity (endpoint, two ipcache lookups,
 *    conntrack miss, policy hash lookups, conntrack write). A pure SYN always
 *    goes through policy, so repeating it measures an opening every time.
 * A last table prices the other decision paths at the largest size.
 *
 *   node dist/bench/datapath.js [--repeat N] [--rounds N]
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ProgramInfo } from '../src/datapath/api.js';
import { openObject } from '../src/datapath/bpf-object.js';
import { ensureBpffsMounted, removePinDir } from '../src/datapath/bpffs.js';
import { loadLxc, type LxcDatapath } from '../src/datapath/lxc.js';
import { runAs } from '../src/datapath/lxc-test-run.js';
import { endpointEntry } from '../src/datapath/maps/endpoints.js';
import { policyClassesOf, policyKey, policyKeysForPorts } from '../src/datapath/maps/policy-v3.js';
import { parseIpv4, formatIpv4 } from '../src/datapath/maps/ipv4.js';
import { testRun } from '../src/datapath/test-run.js';
import { SluiceDirection, SluiceIdentityReserved, SluicePolicyAction } from '../src/datapath/generated/abi.js';
import { ipv4Frame } from '../test/helpers/packet.js';

const EMPTY_OBJECT = fileURLToPath(new URL('../../build/bpf/empty.o', import.meta.url));
const SIZES = [10, 1_000, 100_000] as const;
const BASE = parseIpv4('10.128.0.0');
const POD = formatIpv4(BASE); // the endpoint under test is the first /32
/** Every lxc run is endpoint 1's (src/datapath/lxc-test-run.ts). */
const ENDPOINT = { endpointId: 1, ipv4: BASE };

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

/**
 * Median ns/packet of each program, runs interleaved so drift hits all alike.
 * The kernel times the program alone: the sl_lxc_v1 write of runAs is not in it.
 */
function measure(lxc: LxcDatapath, progs: ReadonlyArray<readonly [ProgramInfo, Buffer]>): number[] {
  const samples = progs.map(() => [] as number[]);
  // Round -1 warms caches and the JIT image and is not recorded.
  for (let r = -1; r < rounds; r++) {
    progs.forEach(([prog, data], i) => {
      const res = prog === lxc.fromContainer || prog === lxc.toContainer
        ? runAs(lxc.maps.interfaces, ENDPOINT, prog, { data, repeat }) : testRun(prog, { data, repeat });
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
  const lxc = loadLxc({ pinRoot });
  try {
    lxc.maps.endpoints.update(1, egressEntry(lxc, true));
    console.log(`bench/datapath: BPF_PROG_TEST_RUN, repeat ${repeat} x ${rounds} rounds (medians), TCP 64-byte frames`);
    console.log('ipcache entries | empty (floor) ns | established from ns | established to ns | SYN from ns | est/floor | SYN/floor');
    let filled = 0;
    const ratios: [number, number][] = [];
    for (const size of SIZES) {
      // Grow the ipcache to `size` /32s; the peer is always the newest entry,
      // and a /16 covering all of them makes the trie answer the longest match.
      const batch: [{ prefixlen: number; addr: number }, { identity: number; flags: number }][] = [];
      for (; filled < size; filled++) {
        batch.push([{ prefixlen: 32, addr: BASE + filled }, { identity: identityOf(filled), flags: 0 }]);
      }
      lxc.maps.ipcache.updateBatch(batch);
      lxc.maps.ipcache.update({ prefixlen: 16, addr: BASE }, { identity: SluiceIdentityReserved.FIRST + 9999, flags: 0 });
      // Let the kernel finish the work a large insert leaves behind (element
      // caches refilled by kworkers), which otherwise lands in the first rounds.
      settle(1000);
      const peer = formatIpv4(BASE + filled - 1);
      allowEgressPort(lxc, identityOf(filled - 1), 443);
      const out = ipv4Frame({ src: POD, dst: peer }, { proto: 'tcp', sport: 40000, dport: 80, flags: 0x10 });
      const inb = ipv4Frame({ src: peer, dst: POD }, { proto: 'tcp', sport: 80, dport: 40000, flags: 0x10 });
      const syn = ipv4Frame({ src: POD, dst: peer }, { proto: 'tcp', sport: 40001, dport: 443, flags: 0x02 });
      // The established connection: opened by one SYN (allowed to port 80 of any peer), then ACKs both ways.
      allowEgressPort(lxc, 0, 80);
      runAs(lxc.maps.interfaces, ENDPOINT, lxc.fromContainer, { data: ipv4Frame({ src: POD, dst: peer }, { proto: 'tcp', sport: 40000, dport: 80, flags: 0x02 }) });
      const [floor = NaN, from = NaN, to = NaN, opening = NaN] = measure(lxc, [
        [empty.program('empty'), out], [lxc.fromContainer, out], [lxc.toContainer, inb], [lxc.fromContainer, syn],
      ]);
      ratios.push([Math.max(from, to) / floor, opening / floor]);
      console.log(`${String(size).padStart(15)} | ${floor.toFixed(0).padStart(16)} | ${from.toFixed(0).padStart(19)} | ${to.toFixed(0).padStart(17)} | ${opening.toFixed(0).padStart(11)} | ${(Math.max(from, to) / floor).toFixed(2).padStart(9)} | ${(opening / floor).toFixed(2).padStart(9)}`);
    }
    const [first = [NaN, NaN], last = [NaN, NaN]] = [ratios[0], ratios[ratios.length - 1]];
    console.log(`ratio growth from ${SIZES[0]} to ${SIZES[SIZES.length - 1]} entries: established x${(last[0] / first[0]).toFixed(2)}, SYN x${(last[1] / first[1]).toFixed(2)} (1.00 = flat)`);
    paths(lxc, empty.program('empty'), formatIpv4(BASE + filled - 1), identityOf(filled - 1));
  } finally {
    lxc.close();
    empty.close();
    removePinDir(pinRoot);
  }
}

function identityOf(index: number): number {
  return SluiceIdentityReserved.FIRST + (index % 5000);
}

function allowEgressPort(lxc: LxcDatapath, remoteIdentity: number, port: number): void {
  const keys = policyKeysForPorts({ endpointId: 1, direction: SluiceDirection.EGRESS, remoteIdentity }, 6, port, port);
  lxc.maps.policy.updateBatch(keys.map((k) => [k, { action: SluicePolicyAction.ALLOW, ruleId: port }] as const));
  lxc.maps.endpoints.update(1, egressEntry(lxc, true));
}

/** Endpoint 1's entry with the exact port classes of its entries in the map, as the compiler writes them. */
function egressEntry(lxc: LxcDatapath, isolated: boolean): ReturnType<typeof endpointEntry> {
  const egress = policyClassesOf([...lxc.maps.policy.entries()].map(([k]) => k).filter((k) => k.endpointId === 1));
  return endpointEntry({ ingress: false, egress: isolated }, 0, { ingress: 0, egress });
}

/**
 * The per-packet cost of each decision path, from the pod to `peer`. A pure
 * SYN always goes through policy and rewrites its conntrack entry, so
 * repeating it measures a connection opening every time.
 */
function paths(lxc: LxcDatapath, floorProg: ProgramInfo, peer: string, peerIdentity: number): void {
  const syn = ipv4Frame({ src: POD, dst: peer }, { proto: 'tcp', sport: 40001, dport: 443, flags: 0x02 });
  const synAny = ipv4Frame({ src: POD, dst: peer }, { proto: 'tcp', sport: 40002, dport: 8443, flags: 0x02 });
  const icmpError = ipv4Frame({ src: POD, dst: peer }, { proto: 'icmp', type: 3, code: 3, payload: Buffer.alloc(28) });
  const allow = { action: SluicePolicyAction.ALLOW, ruleId: 1 };
  const egress = { endpointId: 1, direction: SluiceDirection.EGRESS };
  lxc.maps.policy.updateBatch([
    ...policyKeysForPorts({ ...egress, remoteIdentity: peerIdentity }, 6, 443, 443).map((k) => [k, allow] as const),
    ...policyKeysForPorts({ ...egress, remoteIdentity: 0 }, 6, 8000, 8999).map((k) => [k, allow] as const),
    [policyKey({ ...egress, remoteIdentity: peerIdentity }), allow],
  ]);
  const rows: [string, Buffer, boolean][] = [
    ['SYN, not isolated (CT write)', syn, false],
    ['SYN, isolated, peer port rule', syn, true],
    ['SYN, isolated, any-peer range rule', synAny, true],
    ['ICMP error, isolated (no CT)', icmpError, true],
  ];
  console.log(`paths at the largest size | empty (floor) ns | from_container ns | from/floor`);
  for (const [label, frame, isolated] of rows) {
    lxc.maps.endpoints.update(1, egressEntry(lxc, isolated));
    const [floor = NaN, from = NaN] = measure(lxc, [[floorProg, frame], [lxc.fromContainer, frame]]);
    console.log(`${label.padStart(34)} | ${floor.toFixed(0).padStart(16)} | ${from.toFixed(0).padStart(17)} | ${(from / floor).toFixed(2).padStart(10)}`);
  }
}

main();
