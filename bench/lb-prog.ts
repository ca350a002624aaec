/**
 * bench/lb, part 3: the per-packet cost of the pod's programs on an
 * established connection to a Service, through BPF_PROG_TEST_RUN, with 10
 * and 10,000 Services (two backends each, random tables) written by the
 * agent's own lb owner, beside the empty tc program in the same run (the
 * floor) and beside an established connection to a pod (no Service).
 *
 * The connection is opened by one SYN to the last Service's VIP (the
 * program picks a backend and pins it in conntrack); then ACKs of it are
 * repeated: from_container (pod → VIP: the pin, the connection's entry,
 * the DNAT) and to_container (the backend's reply: the reverse NAT). Runs
 * alternate floor and programs; medians over rounds.
 */
import { fileURLToPath } from 'node:url';
import type { ProgramInfo } from '../src/datapath/api.js';
import { openObject } from '../src/datapath/bpf-object.js';
import { removePinDir } from '../src/datapath/bpffs.js';
import { loadLxc, type LxcDatapath } from '../src/datapath/lxc.js';
import { runAs } from '../src/datapath/lxc-test-run.js';
import { endpointEntry } from '../src/datapath/maps/endpoints.js';
import { formatIpv4, parseIpv4 } from '../src/datapath/maps/ipv4.js';
import { testRun } from '../src/datapath/test-run.js';
import type { EndpointSlice, Service } from '../src/lb/model.js';
import { LbOwner } from '../src/reconcile/lb.js';
import { runRound } from '../src/reconcile/round.js';
import { ipv4Frame } from '../test/helpers/packet.js';

const EMPTY_OBJECT = fileURLToPath(new URL('../../build/bpf/empty.o', import.meta.url));
const POD = '10.128.0.1';
const PEER = '10.128.0.2';
const ENDPOINT = { endpointId: 1, ipv4: parseIpv4(POD) };
const ACK = 0x10;
const SYN = 0x02;

export interface ProgRow {
  readonly services: number;
  readonly floorNs: number;
  /** from_container, pod → VIP, established. */
  readonly toVipNs: number;
  /** to_container, the backend's reply, established. */
  readonly replyNs: number;
  /** from_container, pod → pod, established (no Service). */
  readonly podNs: number;
  /** to_container, the peer pod's reply (no Service). */
  readonly podReplyNs: number;
}

const octets = (i: number): string => `${(i >> 8) & 255}.${i & 255}`;
const vipOf = (i: number): string => `10.96.${octets(i)}`;

function workload(n: number): { services: Service[]; slices: EndpointSlice[] } {
  const services: Service[] = [];
  const slices: EndpointSlice[] = [];
  for (let i = 0; i < n; i++) {
    services.push({
      namespace: 'bench', name: `s${i}`, labels: {}, type: 'ClusterIP', clusterIPs: [vipOf(i)],
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }], externalIPs: [], loadBalancerIPs: [],
      externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster',
    });
    slices.push({
      namespace: 'bench', name: `s${i}-1`, serviceName: `s${i}`, addressType: 'IPv4', ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      endpoints: [1, 2].map((j) => ({ addresses: [`10.${j}.${octets(i)}`], ready: true, serving: true, terminating: false, nodeName: 'n2' })),
    });
  }
  return { services, slices };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function run(lxc: LxcDatapath, prog: ProgramInfo, data: Buffer, repeat: number): number {
  const res = prog === lxc.fromContainer || prog === lxc.toContainer
    ? runAs(lxc.maps.interfaces, ENDPOINT, prog, { data, repeat }) : testRun(prog, { data, repeat });
  if (res.retval !== 0) throw new Error(`${prog.name}: retval ${res.retval}, expected TC_ACT_OK`);
  return res.durationNs;
}

/** The destination address of an IPv4 frame (bytes 30-33 behind a 14-byte Ethernet header). */
function frameDst(frame: Buffer): string {
  return `${frame[30] ?? 0}.${frame[31] ?? 0}.${frame[32] ?? 0}.${frame[33] ?? 0}`;
}

/**
 * Medians (ns/packet) at each size; `pinRoot` must be a fresh directory of
 * the caller's (removed here).
 */
export function progCost(pinRoot: string, sizes: readonly number[], repeat: number, rounds: number): ProgRow[] {
  const empty = openObject(EMPTY_OBJECT);
  const lxc = loadLxc({ pinRoot });
  const rows: ProgRow[] = [];
  try {
    // Endpoint 1 is not isolated: policy allows, as for a pod without NetworkPolicy.
    lxc.maps.endpoints.update(ENDPOINT.endpointId, endpointEntry({ ingress: false, egress: false }, 0));
    const owner = new LbOwner(lxc.maps.lb, { algorithm: 'random' });
    for (const [k, size] of sizes.entries()) {
      const { services, slices } = workload(size);
      const r = runRound([owner], { lb: { services, slices, node: { name: 'n1' }, nodeAddresses: [] } });
      if (r.owners[0]?.complete !== true) throw new Error(`lb owner at ${size} Services: ${JSON.stringify(r.owners[0]?.failures)}`);
      const vip = vipOf(size - 1);
      const sport = 40000 + k;
      const opened = runAs(lxc.maps.interfaces, ENDPOINT, lxc.fromContainer, { data: ipv4Frame({ src: POD, dst: vip }, { proto: 'tcp', sport, dport: 80, flags: SYN }) });
      const backend = frameDst(opened.data);
      if (backend === vip) throw new Error(`the SYN to ${vip}:80 was not translated (${size} Services)`);
      runAs(lxc.maps.interfaces, ENDPOINT, lxc.fromContainer, { data: ipv4Frame({ src: POD, dst: PEER }, { proto: 'tcp', sport, dport: 80, flags: SYN }) });
      const out = ipv4Frame({ src: POD, dst: vip }, { proto: 'tcp', sport, dport: 80, flags: ACK });
      const reply = ipv4Frame({ src: backend, dst: POD }, { proto: 'tcp', sport: 8080, dport: sport, flags: ACK });
      const pod = ipv4Frame({ src: POD, dst: PEER }, { proto: 'tcp', sport, dport: 80, flags: ACK });
      const podReply = ipv4Frame({ src: PEER, dst: POD }, { proto: 'tcp', sport: 80, dport: sport, flags: ACK });
      const progs: readonly (readonly [ProgramInfo, Buffer])[] = [
        [empty.program('empty'), out], [lxc.fromContainer, out], [lxc.toContainer, reply], [lxc.fromContainer, pod], [lxc.toContainer, podReply],
      ];
      const samples = progs.map(() => [] as number[]);
      // Round -1 warms caches and is not recorded.
      for (let round = -1; round < rounds; round++) {
        progs.forEach(([p, data], i) => {
          const ns = run(lxc, p, data, repeat);
          if (round >= 0) samples[i]?.push(ns);
        });
      }
      const [floorNs = NaN, toVipNs = NaN, replyNs = NaN, podNs = NaN, podReplyNs = NaN] = samples.map(median);
      const check = runAs(lxc.maps.interfaces, ENDPOINT, lxc.fromContainer, { data: out });
      if (frameDst(check.data) !== backend) throw new Error(`the established packet went to ${frameDst(check.data)}, not ${backend} (${formatIpv4(parseIpv4(vip))})`);
      rows.push({ services: size, floorNs, toVipNs, replyNs, podNs, podReplyNs });
    }
  } finally {
    lxc.close();
    empty.close();
    removePinDir(pinRoot);
  }
  return rows;
}
