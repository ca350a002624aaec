/**
 * Randomized differential test: random clusters (test/policy/random-cluster.ts:
 * equal labels with different named ports, ipBlocks with except holes over
 * pod IPs, endPort, SCTP, empty selectors, ...), and for every ordered pod
 * pair and several ports/protocols the BPF engine must agree with the model,
 * and pass the reply of every allowed connection. Seeded: a failure prints
 * its seed; SLUICE_DIFF_SEED=<n> reruns one, SLUICE_DIFF_CASES=<n> runs more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLoadedCluster } from '../../src/policy-engine/bpf-engine.js';
import { buildCluster, type Cluster } from '../../src/policy/cluster.js';
import { evaluate } from '../../src/policy/model.js';
import { randomCase } from '../policy/random-cluster.js';

const first = Number(process.env['SLUICE_DIFF_SEED'] ?? 1000);
const count = process.env['SLUICE_DIFF_SEED'] !== undefined ? 1 : Number(process.env['SLUICE_DIFF_CASES'] ?? 20);

test(`bpf engine agrees with the model on ${count} random clusters (seeds ${first}..${first + count - 1})`, async () => {
  let pairs = 0;
  let allowed = 0;
  for (let seed = first; seed < first + count; seed++) {
    const rc = randomCase(seed);
    await withLoadedCluster(rc.cluster, {}, (lc) => {
      for (const { port, protocol } of rc.probes) {
        const r = lc.reachability(port, protocol);
        assert.deepEqual(r.replyDropped, [], `seed ${seed} ${protocol}/${port}: replies dropped`);
        for (const from of r.matrix.pods) {
          for (const to of r.matrix.pods) {
            const want = evaluate(rc.cluster, from, to, port, protocol);
            const got = r.matrix.allowed[from]?.[to];
            assert.equal(got, want.allowed, `seed ${seed} (rerun: SLUICE_DIFF_SEED=${seed}): ${from} → ${to} ${protocol}/${port}: bpf ${String(got)}, model: ${want.reason}`);
            pairs++;
            if (want.allowed) allowed++;
          }
        }
      }
    });
  }
  // The generator must produce both verdicts in quantity, or the test proves little.
  assert.ok(allowed > pairs / 5 && allowed < (pairs * 4) / 5, `only ${allowed} of ${pairs} pairs allowed`);
});

test('incremental: policies added one by one, then removed, on loaded programs; bpf agrees with the model after every apply', async () => {
  for (let seed = first; seed < first + Math.min(count, 10); seed++) {
    const rc = randomCase(seed);
    const steps = [
      ...rc.policies.map((_, i) => rc.policies.slice(0, i + 1)),
      ...rc.policies.map((_, i) => rc.policies.slice(i + 1)),
    ];
    const clusterWith = (policies: typeof rc.policies): Cluster => {
      const built = buildCluster({ namespaces: rc.namespaces, pods: rc.pods, networkPolicies: policies });
      if (!built.ok) throw new Error(`seed ${seed}: invalid subset`);
      return built.value;
    };
    await withLoadedCluster(clusterWith([]), {}, (lc) => {
      steps.forEach((policies, step) => {
        const cluster = clusterWith(policies);
        lc.update(cluster);
        for (const { port, protocol } of rc.probes) {
          const r = lc.reachability(port, protocol);
          assert.deepEqual(r.replyDropped, [], `seed ${seed} step ${step}: replies dropped`);
          for (const from of r.matrix.pods) {
            for (const to of r.matrix.pods) {
              const want = evaluate(cluster, from, to, port, protocol);
              assert.equal(r.matrix.allowed[from]?.[to], want.allowed,
                `seed ${seed} (SLUICE_DIFF_SEED=${seed}) step ${step} (${policies.length} policies): ${from} → ${to} ${protocol}/${port}: model: ${want.reason}`);
            }
          }
        }
      });
    });
  }
});
