/**
 * The BPF engine against the conformance tables: every case of
 * test/policy/conformance-cases.ts, compiled into the real lxc programs (one
 * instance per pod) and probed with BPF_PROG_TEST_RUN for every ordered
 * pair; the reply of every allowed connection must pass too.
 *
 * The programs are loaded once and each case is applied as a diff over the
 * previous one (LoadedCluster.update), so the cases also exercise the
 * incremental path: whatever the previous case left must not leak into the
 * next case's verdicts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadedCluster } from '../../src/policy-engine/bpf-engine.js';
import { CASES, parseTable, renderDiff } from '../policy/conformance-cases.js';
import { PODS, xyzCluster } from '../policy/xyz.js';

describe('bpf conformance', () => {
  let lc: LoadedCluster | undefined;
  before(() => {
    lc = LoadedCluster.load(xyzCluster([]));
  });
  after(() => lc?.close());

  for (const c of CASES) {
    test(c.name, () => {
      if (lc === undefined) throw new Error('not loaded');
      const report = lc.update(xyzCluster(c.policies, c.cluster));
      assert.ok(report.ok);
      for (const probe of c.probes) {
        const label = probe.protocol === 'ICMP' ? 'ICMP' : `${probe.protocol}/${probe.port}`;
        const expected = parseTable(probe.expect, c.name);
        const r = lc.reachability(probe.port, probe.protocol);
        assert.deepEqual(r.matrix.pods, PODS);
        const actual = PODS.map((from) => PODS.map((to) => r.matrix.allowed[from]?.[to] ?? false));
        assert.deepEqual(actual, expected, `${c.name} (${c.upstream}) ${label}: bpf engine differs (! = differs)\n${renderDiff(actual, expected)}`);
        assert.deepEqual(r.replyDropped, [], `${c.name} ${label}: replies of allowed connections dropped`);
      }
    });
  }

  test('a freshly loaded cluster answers like the incrementally updated one', async () => {
    const last = CASES[CASES.length - 1];
    if (last === undefined || lc === undefined) throw new Error('no cases');
    const fresh = LoadedCluster.load(xyzCluster(last.policies, last.cluster));
    try {
      for (const probe of last.probes) {
        assert.deepEqual(fresh.reachability(probe.port, probe.protocol).matrix, lc.reachability(probe.port, probe.protocol).matrix);
      }
    } finally {
      fresh.close();
    }
    await Promise.resolve();
  });
});
