/**
 * bench/flows: the agent's flow pipeline on this machine.
 *
 *  1. datapath → agent: lxc.o run through BPF_PROG_TEST_RUN with tracing on
 *     (one event per packet) in bursts, the ring buffer read on the event
 *     loop into the observer (decode, enrich from an applied view, store).
 *     Reports events/s produced and ingested and checks that every event is
 *     either ingested or counted lost (EVENTS_LOST): zero uncounted loss.
 *  2. agent alone: encoded records decoded, enriched and stored as fast as
 *     one core goes; events/s and CPU ms per 100k events.
 *  3. gRPC on a unix socket, ring full: GetFlows for the last 1,000 flows,
 *     and the first flow of a follow stream (from the event's ingest to the
 *     client's receipt).
 *
 * Figures, not assertions (the machine is shared and noisy).
 *
 *   node dist/bench/flows.js [--events N] [--burst N]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BPFFS_MOUNT, ensureBpffsMounted, ensurePinDir, removePinDir } from '../src/datapath/bpffs.js';
import { SluiceConfigFlags, SluiceCounter, SluiceEventFlags, sluiceEventCodec, type SluiceEvent } from '../src/datapath/generated/abi.js';
import { loadLxc } from '../src/datapath/lxc.js';
import { setTestRunEndpoint } from '../src/datapath/lxc-test-run.js';
import { writeGlobalConfig } from '../src/datapath/maps/config.js';
import { readDatapathCounter } from '../src/datapath/maps/counters.js';
import { endpointEntry } from '../src/datapath/maps/endpoints.js';
import { readEvents } from '../src/datapath/maps/events.js';
import { ipcacheKey } from '../src/datapath/maps/ipcache.js';
import { parseIpv4 } from '../src/datapath/maps/ipv4.js';
import { testRun } from '../src/datapath/test-run.js';
import { FlowObserver } from '../src/flow/observer.js';
import { ObserverClient } from '../src/flow/server/client.js';
import { ObserverGrpcServer } from '../src/flow/server/grpc-server.js';
import { EMPTY_APPLIED_VIEW, type AppliedView } from '../src/reconcile/applied-view.js';
import { ipv4Frame } from '../test/helpers/packet.js';
import { latencyRow } from './stats.js';

const { values: args } = parseArgs({ options: { events: { type: 'string', default: '1000000' }, burst: { type: 'string', default: '8192' } } });
const EVENTS = Number(args.events);
const BURST = Number(args.burst);

const POD = '10.0.1.5';
const PEER = '10.0.2.7';
const VIEW: AppliedView = {
  ...EMPTY_APPLIED_VIEW,
  endpoint: (id) => (id === 1 ? { endpointId: 1, namespace: 'bench', pod: 'client', identity: 300 } : undefined),
  identity: (id) => (id === 300 || id === 301 ? { id, kind: 'pod', namespace: 'bench', labels: { app: `a${id}` }, pods: [], terms: [] } : undefined),
  podAt: (ip) => (ip === PEER ? { namespace: 'bench', pod: 'server', identity: 301 } : undefined),
};

const observer = (capacity = 4095): FlowObserver =>
  new FlowObserver({ nodeName: 'bench', view: () => VIEW, now: () => Date.now(), wallOffsetNs: () => 0n, capacity });

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** 1. The kernel's events through the ring buffer into the observer. */
async function datapathToAgent(): Promise<void> {
  ensureBpffsMounted();
  const pinRoot = `${BPFFS_MOUNT}/sluice-hf-bench-${randomBytes(4).toString('hex')}`;
  ensurePinDir(pinRoot);
  const dp = loadLxc({ pinRoot });
  try {
    const endpoint = { endpointId: 1, ipv4: parseIpv4(POD) };
    setTestRunEndpoint(dp.maps.interfaces, endpoint);
    dp.maps.endpoints.update(1, endpointEntry({ ingress: false, egress: false }, 0));
    dp.maps.ipcache.update(ipcacheKey(PEER), { identity: 301, flags: 0 });
    writeGlobalConfig(dp.maps.config, { flags: SluiceConfigFlags.TRACE_ALLOWED });
    const obs = observer();
    let ingested = 0;
    const reader = readEvents(dp.maps.events, (evs) => {
      ingested += evs.length;
      obs.ingest(evs);
    });
    const frame = ipv4Frame({ src: POD, dst: PEER }, { proto: 'udp', sport: 40000, dport: 53 });
    const lostBefore = readDatapathCounter(dp.maps.counters, SluiceCounter.EVENTS_LOST);
    const lostNow = (): number => Number(readDatapathCounter(dp.maps.counters, SluiceCounter.EVENTS_LOST) - lostBefore);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let produced = 0;
    while (produced < EVENTS) {
      const n = Math.min(BURST, EVENTS - produced);
      testRun(dp.fromContainer, { data: frame, repeat: n });
      produced += n;
      // A test run holds the event loop; the ring (16,383 events) takes one burst. The reader drains
      // it (up to 4,096 records per event-loop turn) before the next burst.
      while (ingested + lostNow() < produced) await turn();
    }
    for (let i = 0; i < 200 && ingested + lostNow() < produced; i++) await new Promise((r) => setTimeout(r, 5));
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const lost = lostNow();
    reader.stop();
    console.log(`1. datapath → ring buffer → observer (BPF_PROG_TEST_RUN bursts of ${BURST}, tracing every packet, each burst drained before the next)`);
    console.log(`   produced ${produced}, ingested ${ingested}, counted lost ${lost}, uncounted ${produced - ingested - lost}`);
    console.log(`   ${Math.round(ingested / secs).toLocaleString('en')} events/s ingested (${Math.round(produced / secs).toLocaleString('en')} produced/s, the kernel's test runs included)`);
    console.log(`   CPU: ${((cpu.user + cpu.system) / 1000 / (produced / 100_000)).toFixed(1)} ms per 100k events produced and ingested (user ${(cpu.user / 1000).toFixed(0)} ms, system ${(cpu.system / 1000).toFixed(0)} ms)`);
  } finally {
    dp.close();
    removePinDir(pinRoot);
  }
}

function sampleEvent(i: number): SluiceEvent {
  return {
    timestampNs: BigInt(i), saddr: parseIpv4(POD), daddr: parseIpv4(PEER), sport: 40000 + (i & 1023), dport: 53, protocol: 17,
    eventType: 2, verdict: 1, direction: 1, srcIdentity: 300, dstIdentity: 301, endpointId: 1, ifindex: 5, pktLen: 60,
    dropReason: 0, flags: SluiceEventFlags.CT_ESTABLISHED, ruleId: 0, tcpFlags: 0,
  };
}

/** 2. Decode + enrich + store alone. */
function agentAlone(): void {
  const records = Array.from({ length: 4096 }, (_, i) => sluiceEventCodec.encode(sampleEvent(i)));
  const obs = observer();
  const batch = 4096;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let done = 0; done < EVENTS; done += batch) obs.ingest(records.map((r) => sluiceEventCodec.decode(r)));
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  console.log('2. the agent alone: decode, enrich, store (batches of 4,096)');
  console.log(`   ${Math.round(EVENTS / secs).toLocaleString('en')} events/s on one core; CPU ${((cpu.user + cpu.system) / 1000 / (EVENTS / 100_000)).toFixed(1)} ms per 100k events`);
}

/** 3. GetFlows with a full ring, and the first flow of a follow stream. */
async function grpcLatency(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-hf-bench-'));
  const obs = observer();
  const server = new ObserverGrpcServer({ observer: obs, version: 'bench' });
  try {
    await server.listen([{ address: join(dir, 'hubble.sock') }]);
    obs.ingest(Array.from({ length: 4095 }, (_, i) => sampleEvent(i)));
    const client = new ObserverClient({ server: `unix://${join(dir, 'hubble.sock')}` });
    await client.getFlows({ number: 1 }, () => undefined).done; // connect
    const last1000: number[] = [];
    for (let i = 0; i < 30; i++) {
      let n = 0;
      const t0 = performance.now();
      await client.getFlows({ number: 1000 }, () => n++).done;
      last1000.push(performance.now() - t0);
      if (n !== 1000) throw new Error(`GetFlows gave ${n} flows`);
    }
    const first: number[] = [];
    for (let i = 0; i < 30; i++) {
      let t0 = 0;
      let got = 0;
      const call = client.getFlows({ follow: true }, () => {
        if (got++ === 0) first.push(performance.now() - t0);
      });
      await new Promise((r) => setTimeout(r, 20)); // the stream is open
      t0 = performance.now();
      obs.ingest([sampleEvent(i)]);
      while (got === 0) await new Promise((r) => setTimeout(r, 1));
      call.cancel();
      await call.done;
    }
    const opened: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      let done = false;
      const call = client.getFlows({ follow: true, number: 1 }, () => {
        if (!done) opened.push(performance.now() - t0);
        done = true;
      });
      while (!done) await new Promise((r) => setTimeout(r, 1));
      call.cancel();
      await call.done;
    }
    client.close();
    console.log('3. gRPC over a unix socket, ring full (4,095 flows)              p50      p99      max  (ms)');
    console.log(`   ${latencyRow('GetFlows, the last 1,000 flows', last1000, 60)}`);
    console.log(`   ${latencyRow('follow: ingest → the client has the flow', first, 60)}`);
    console.log(`   ${latencyRow('follow --last 1: call → first flow', opened, 60)}`);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await datapathToAgent();
agentAlone();
await grpcLatency();
