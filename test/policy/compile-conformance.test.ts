/**
 * The compiled datapath state decides exactly as the model: every
 * conformance table, and many random clusters, through datapath-lookup.ts
 * (the datapath's algorithm over the compiled maps, without a kernel).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster } from '../../src/policy/cluster.js';
import { compilePolicy, type CompiledPolicy } from '../../src/policy/compile.js';
import { lookupConnection, type LookupEnd } from '../../src/policy/datapath-lookup.js';
import type { TrafficProtocol } from '../../src/policy/match.js';
import { evaluate } from '../../src/policy/model.js';
import { CASES, parseTable, renderDiff } from './conformance-cases.js';
import { randomCase } from './random-cluster.js';
import { PODS, xyzCluster } from './xyz.js';

/** Every pod is a local endpoint, ids in pod order from 1. */
function compileAll(cluster: Cluster): CompiledPolicy {
  return compilePolicy({ cluster, endpoints: new Map(cluster.pods.map((p, i) => [p.id, i + 1])) });
}

function end(compiled: CompiledPolicy, podRef: string): LookupEnd {
  const pod = compiled.cluster.podsById.get(podRef);
  if (pod?.ip === undefined) throw new Error(`no pod ${podRef}`);
  const endpointId = [...compiled.endpoints.values()].find((e) => e.pod.id === podRef)?.endpointId;
  return endpointId === undefined ? { addr: Number(pod.ip.value) } : { addr: Number(pod.ip.value), endpointId };
}

function compiledAllows(compiled: CompiledPolicy, from: string, to: string, port: number, protocol: TrafficProtocol): boolean {
  return lookupConnection(compiled.datapath, end(compiled, from), end(compiled, to), protocol, port).allowed;
}

for (const c of CASES) {
  test(`compiled conformance: ${c.name}`, () => {
    const compiled = compileAll(xyzCluster(c.policies, c.cluster));
    for (const probe of c.probes) {
      const expected = parseTable(probe.expect, c.name);
      const actual = PODS.map((from) => PODS.map((to) => compiledAllows(compiled, from, to, probe.port, probe.protocol)));
      const label = probe.protocol === 'ICMP' ? 'ICMP' : `${probe.protocol}/${probe.port}`;
      assert.deepEqual(actual, expected, `${c.name} ${label}: compiled state differs (! = differs)\n${renderDiff(actual, expected)}`);
    }
  });
}

test('compiled state agrees with the model on 300 random clusters', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rc = randomCase(seed);
    const compiled = compileAll(rc.cluster);
    const pods = rc.cluster.pods.map((p) => p.id);
    for (const { port, protocol } of rc.probes) {
      for (const from of pods) {
        for (const to of pods) {
          const want = evaluate(rc.cluster, from, to, port, protocol);
          const got = compiledAllows(compiled, from, to, port, protocol);
          assert.equal(got, want.allowed, `seed ${seed}: ${from} → ${to} ${protocol}/${port}: compiled ${got}, model ${want.reason}`);
        }
      }
    }
  }
});
