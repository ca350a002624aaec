/**
 * The compile seed on disk (src/agent/datapath/seed-file.ts): a round trip
 * keeps every id (a compile seeded from the file against the same maps plans
 * nothing), unreadable files name the field, and the keeper writes off the
 * sync's path, coalesced and only when something changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompileSeedFile, decodeSeed, encodeSeed, SeedKeeper, storedSeedOf, type StoredSeed } from '../../src/agent/datapath/seed-file.js';
import { AgentError } from '../../src/agent/errors.js';
import { diffDatapath, diffSize } from '../../src/policy/diff.js';
import { buildCluster, type Cluster } from '../../src/policy/cluster.js';
import { compilePolicy, type CompiledPolicy } from '../../src/policy/compile.js';
import { flush } from './helpers/fake-clock.js';
import { captureLog } from './helpers/logs.js';

function cluster(policies: string[], pods = ['a', 'b', 'c']): Cluster {
  const built = buildCluster({
    namespaces: [{ metadata: { name: 'n', labels: { team: 't' } } }],
    pods: pods.map((name, i) => ({
      metadata: { namespace: 'n', name, labels: { app: name } },
      spec: { containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }] },
      status: { podIP: `10.0.0.${i + 1}` },
    })),
    networkPolicies: policies.map((name) => ({
      metadata: { namespace: 'n', name },
      spec: { podSelector: { matchLabels: { app: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'b' } } }, { ipBlock: { cidr: '192.0.2.0/24' } }], ports: [{ port: 'http' }] }] },
    })),
  });
  if (!built.ok) throw new Error(JSON.stringify(built.errors));
  return built.value;
}

const compile = (c: Cluster, previous?: Parameters<typeof compilePolicy>[1]): CompiledPolicy =>
  compilePolicy({ cluster: c, endpoints: new Map([['n/a', 1], ['n/b', 2]]) }, previous);

test('a round trip keeps every id: seeded from the file, a compile against the same maps plans nothing', () => {
  // p1 and pod "old" go away: the ids left are not what a fresh start would hand out.
  const first = compile(cluster(['p1', 'p2'], ['old', 'a', 'b', 'c']));
  const now = compile(cluster(['p2', 'p3']), first);
  const seed = decodeSeed(encodeSeed(storedSeedOf(now)), 'x.json');
  assert.deepEqual([...seed.identityTable.byKey], [...now.identities.table.byKey]);
  assert.equal(seed.identityTable.next, now.identities.table.next);
  assert.deepEqual([...seed.ruleTable.byId], [...now.rules.byId]);
  assert.equal(seed.ruleTable.next, now.rules.next);
  assert.deepEqual([...seed.revisions], [...now.endpoints].map(([id, e]) => [id, e.entry.policyRevision]));

  const restarted = compile(cluster(['p2', 'p3']), { ...seed, datapath: now.datapath });
  assert.equal(diffSize(diffDatapath(now.datapath, restarted.datapath)), 0, 'seeded: nothing to write');
  const fresh = compile(cluster(['p2', 'p3']), { datapath: now.datapath });
  assert.ok(diffSize(diffDatapath(now.datapath, fresh.datapath)) > 0, 'unseeded: ids differ and are rewritten');
});

test('an unreadable seed is an error naming the file and the field', () => {
  const good = JSON.parse(encodeSeed(storedSeedOf(compile(cluster(['p1']))))) as Record<string, unknown>;
  const cases: [string, string][] = [
    ['{', ''],
    [JSON.stringify({ ...good, version: 9 }), 'version'],
    [JSON.stringify({ ...good, rules: { next: 5, entries: [[1, { policy: 'n/p', direction: 'sideways', index: 0 }]] } }), 'rules.entries[0]'],
    [JSON.stringify({ ...good, rules: { next: 1, entries: [[1, { policy: 'n/p', direction: 'ingress', index: 0 }]] } }), 'rules.entries'],
    [JSON.stringify({ ...good, identities: { next: 300, entries: [[5, '["x"]']] } }), 'identities'],
    [JSON.stringify({ ...good, revisions: [[1, -1]] }), 'revisions[0]'],
  ];
  for (const [text, field] of cases) {
    assert.throws(() => decodeSeed(text, '/s/compile-seed.json'), (e: unknown) => {
      assert.ok(e instanceof AgentError);
      assert.equal(e.code, 'state-corrupt');
      assert.equal(e.field, field);
      assert.match(e.message, /^compile seed \/s\/compile-seed\.json: /);
      return true;
    }, field);
  }
});

test('the file: absent → undefined, written atomically with mode 0600, read back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-t-ag-seedfile-'));
  try {
    const file = new CompileSeedFile(join(dir, 'state', 'compile-seed.json'));
    assert.equal(await file.load(), undefined);
    const seed = storedSeedOf(compile(cluster(['p1'])));
    await file.save(seed);
    assert.equal(statSync(file.path).mode & 0o777, 0o600);
    assert.deepEqual([...((await file.load())?.ruleTable.byId ?? [])], [...seed.ruleTable.byId]);
    writeFileSync(file.path, 'not json');
    await assert.rejects(file.load(), (e: unknown) => e instanceof AgentError && e.code === 'state-corrupt');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the keeper writes the newest seed, one write at a time, skips an unchanged one, and survives a failed write', async () => {
  const saves: StoredSeed[] = [];
  let fail = false;
  const logs = captureLog();
  const keeper = new SeedKeeper({
    path: '/x/compile-seed.json',
    save: (seed) => {
      if (fail) return Promise.reject(new Error('ENOSPC'));
      saves.push(seed);
      return Promise.resolve();
    },
  }, logs.log);
  const c1 = compile(cluster(['p1']));
  const c2 = compile(cluster(['p1', 'p2']), c1);
  const c3 = compile(cluster(['p1', 'p2', 'p3']), c2);
  keeper.applied(c1);
  assert.equal(saves.length, 0, 'not on the sync path');
  keeper.applied(c2);
  keeper.applied(c3);
  await keeper.flush();
  assert.equal(saves.length, 1, 'only the newest of a burst');
  assert.equal(saves[0]?.ruleTable, c3.rules);
  keeper.applied(compile(cluster(['p1', 'p2', 'p3']), c3));
  await keeper.flush();
  assert.equal(saves.length, 1, 'same tables and revisions: not written again');
  fail = true;
  const c4 = compile(cluster(['p1']), c3);
  keeper.applied(c4);
  await keeper.flush();
  assert.equal(logs.find('compile seed not saved').length, 1);
  fail = false;
  keeper.applied(c4);
  await keeper.flush();
  await flush();
  assert.equal(saves.at(-1)?.ruleTable, c4.rules, 'the next applied sync writes it');
});
