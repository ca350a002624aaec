/**
 * The agent's flow part over a fake FlowSource: events become flows on the
 * unix socket and Hubble metrics, the datapath's lost events are read per CPU
 * and reported, the trace mode reaches the datapath, the exporter writes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import type { FlowsConfig } from '../../src/agent/config.js';
import { FlowMetrics } from '../../src/agent/flow-metrics.js';
import { FlowPart } from '../../src/agent/flows.js';
import type { FlowSource } from '../../src/agent/ports.js';
import type { SluiceEvent } from '../../src/datapath/generated/abi.js';
import { ObserverClient } from '../../src/flow/server/client.js';
import { FakeClock } from './helpers/fake-clock.js';
import { captureLog } from './helpers/logs.js';
import { ALLOWED, event, VIEW } from '../flow/helpers.js';

class FakeSource implements FlowSource {
  deliver: ((events: SluiceEvent[]) => void) | undefined;
  lost: bigint[] = [0n, 0n];
  trace: string | undefined;
  stopped = false;
  readEvents(onEvents: (events: SluiceEvent[]) => void): { stop(): void } {
    this.deliver = onEvents;
    return { stop: () => { this.stopped = true; } };
  }
  lostEventsPerCpu(): readonly bigint[] {
    return this.lost;
  }
  applied(): typeof VIEW {
    return VIEW;
  }
  setTraceMode(mode: 'off' | 'policy' | 'tcp-flags' | 'all'): void {
    this.trace = mode;
  }
}

test('the flow part: events → API, metrics and exporter; lost events per CPU; stop in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-hf-part-'));
  const source = new FakeSource();
  const clock = new FakeClock();
  const registry = new Registry();
  const config: FlowsConfig = {
    socket: join(dir, 'hubble.sock'), capacity: 50, trace: 'policy',
    exporter: { file: join(dir, 'flows.log'), maxSizeBytes: 1 << 20, maxBackups: 1, allow: [{ verdict: ['DROPPED'] }], deny: [] },
  };
  const part = new FlowPart({ config, nodeName: 'node-1', version: 'v', source, metrics: new FlowMetrics(registry), clock, log: captureLog().log });
  try {
    await part.start();
    assert.deepEqual(part.addresses, [`unix:${config.socket}`]);
    assert.equal(source.trace, 'policy');
    source.deliver?.([event(), event({ ...ALLOWED, flags: 16 })]);
    source.lost = [3n, 0n];
    await clock.advance(1000);
    source.lost = [3n, 2n];
    await clock.advance(1000);

    const c = new ObserverClient({ server: `unix://${config.socket}` });
    const got: Record<string, unknown>[] = [];
    await c.getFlows({ number: 10 }, (r) => got.push(r)).done;
    c.close();
    const lost = got.filter((r) => r['lost_events'] !== undefined).map((r) => r['lost_events'] as { num_events_lost: number; cpu?: { value: number } });
    assert.deepEqual(lost.map((l) => [l.num_events_lost, l.cpu?.value ?? 0]), [[3, 0], [2, 1]]);
    assert.equal(got.filter((r) => r['flow'] !== undefined).length, 3, 'a policy verdict and a drop, then a trace');

    const metrics = await registry.metrics();
    assert.match(metrics, /hubble_flows_processed_total\{protocol="TCP",type="Drop",subtype="",verdict="DROPPED"\} 1/);
    assert.match(metrics, /hubble_flows_processed_total\{protocol="TCP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"\} 1/);
    assert.match(metrics, /hubble_drop_total\{reason="POLICY_DENIED",protocol="TCP"\} 1/);
    assert.match(metrics, /hubble_policy_verdicts_total\{direction="ingress",match="none",action="dropped"\} 1/);
    assert.match(metrics, /hubble_lost_events_total\{source="perf_event_ring_buffer"\} 5/);
  } finally {
    await part.stop();
    assert.equal(source.stopped, true);
    const lines = readFileSync(join(dir, 'flows.log'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 2, 'the exporter kept the dropped ones (the verdict and the drop)');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad exporter filters fail the start with the config key', async () => {
  const part = new FlowPart({
    config: { socket: '', capacity: 10, trace: 'off', exporter: { file: '/dev/null', maxSizeBytes: 4096, maxBackups: 0, allow: [], deny: [{ verdict: ['NOPE'] }] } },
    nodeName: 'n', version: 'v', source: new FakeSource(), metrics: new FlowMetrics(new Registry()), clock: new FakeClock(), log: captureLog().log,
  });
  await assert.rejects(part.start(), (e: Error & { field?: string }) => e.field === 'flows.exporter.deny' && /unknown Verdict value/.test(e.message));
});
