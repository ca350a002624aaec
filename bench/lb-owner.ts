/**
 * bench/lb-owner: the load-balancer owner over real pinned maps, in figures
 * (no assertions; the machine is noisy). For 10 / 1,000 / 10,000 ClusterIP
 * Services of two endpoints each (random tables; Maglev at 16381 slots up
 * to 1,000 Services, 64 KiB of kernel memory per table):
 *
 *  1. the first round: plan and writes into empty maps, and the heap;
 *  2. one EndpointSlice change (an endpoint added to one Service): the
 *     round's plan and its writes (backend, table swap with its RCU wait,
 *     frontend), p50 and p99 over --changes changes;
 *  3. a new owner over the same maps (an agent restart): its first round,
 *     which reads the maps back and writes nothing;
 *  4. the same with the read-back and the compile done ahead by
 *     prefetch(input) (for an agent at start): its time, the longest the
 *     event loop waited meanwhile (monitorEventLoopDelay), then the round.
 *
 * Goal (issue 12): one change programmed in p99 < 50 ms.
 *
 *   node dist/bench/lb-owner.js [--changes N] [--random 10,1000,10000] [--maglev 10,1000]
 */
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BPFFS_MOUNT, ensureBpffsMounted, ensurePinDir, removePinDir } from '../src/datapath/bpffs.js';
import { openObject } from '../src/datapath/bpf-object.js';
import { LXC_OBJECT_PATH } from '../src/datapath/lxc.js';
import { openPinnedDatapathMaps } from '../src/datapath/pinned-maps.js';
import type { EndpointSlice, Service } from '../src/lb/model.js';
import { LbOwner, type LbRoundInput } from '../src/reconcile/lb.js';
import type { LbAlgorithm } from '../src/reconcile/lb-desired.js';
import { runRound } from '../src/reconcile/round.js';

const { values: args } = parseArgs({
  options: { changes: { type: 'string', default: '50' }, random: { type: 'string', default: '10,1000,10000' }, maglev: { type: 'string', default: '10,1000' } },
});
const changes = Number(args.changes);
const sizes = (list: string): number[] => list.split(',').filter((x) => x !== '').map(Number);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const ms = (t: number): string => `${t.toFixed(t < 10 ? 2 : 0)} ms`;
const quantile = (xs: readonly number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? 0;

const octets = (i: number): string => `${(i >> 8) & 255}.${i & 255}`;

function workload(n: number): { services: Service[]; slices: EndpointSlice[] } {
  const services: Service[] = [];
  const slices: EndpointSlice[] = [];
  for (let i = 0; i < n; i++) {
    services.push({
      namespace: 'bench', name: `s${i}`, labels: {}, type: 'ClusterIP', clusterIPs: [`10.96.${octets(i)}`],
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

async function run(n: number, algorithm: LbAlgorithm): Promise<void> {
  ensureBpffsMounted();
  const pinDir = `${BPFFS_MOUNT}/sluice-lbp-bench-${randomBytes(4).toString('hex')}`;
  ensurePinDir(pinDir);
  try {
    openObject(LXC_OBJECT_PATH, { pinRoot: pinDir }).close();
    const maps = openPinnedDatapathMaps(pinDir);
    try {
      const { services, slices } = workload(n);
      const input = (s: readonly EndpointSlice[]): LbRoundInput => ({ lb: { services, slices: s, node: { name: 'n1' }, nodeAddresses: [] } });
      gc();
      const heap0 = process.memoryUsage().heapUsed;
      const owner = new LbOwner(maps.lb, { algorithm });
      let t = performance.now();
      const first = runRound([owner], input(slices));
      const firstMs = performance.now() - t;
      gc();
      const heap = process.memoryUsage().heapUsed - heap0;

      const times: number[] = [];
      let current = slices;
      for (let c = 0; c < changes; c++) {
        const i = (c * 7919) % n;
        const s = current[i] as EndpointSlice;
        current = current.map((x, j) => (j === i
          ? { ...s, endpoints: [...s.endpoints, { addresses: [`10.3.${octets(c)}`], ready: true, serving: true, terminating: false, nodeName: 'n2' }] }
          : x));
        t = performance.now();
        const r = runRound([owner], input(current));
        times.push(performance.now() - t);
        if (r.owners[0]?.complete !== true) throw new Error(`change ${c}: ${JSON.stringify(r.owners[0]?.failures)}`);
      }

      t = performance.now();
      const restart = runRound([new LbOwner(maps.lb, { algorithm })], input(current));
      const restartMs = performance.now() - t;

      const ahead = new LbOwner(maps.lb, { algorithm });
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      t = performance.now();
      await ahead.prefetch(input(current));
      const prefetchMs = performance.now() - t;
      delay.disable();
      t = performance.now();
      const afterPrefetch = runRound([ahead], input(current));
      const afterMs = performance.now() - t;
      console.log([
        `${String(n).padStart(6)} Services ${algorithm.padEnd(6)}`,
        `first round ${ms(firstMs)} (${first.operations} writes, heap +${mb(heap)})`,
        `one change p50 ${ms(quantile(times, 0.5))} p99 ${ms(quantile(times, 0.99))}`,
        `restart ${ms(restartMs)} (${restart.planned} writes)`,
        `prefetch ${ms(prefetchMs)} (loop blocked ≤ ${ms(delay.max / 1e6)}) + round ${ms(afterMs)} (${afterPrefetch.planned} writes)`,
      ].join('  '));
    } finally {
      maps.close();
    }
  } finally {
    removePinDir(pinDir);
  }
}

for (const n of sizes(args.random)) await run(n, 'random');
for (const n of sizes(args.maglev)) await run(n, 'maglev');
