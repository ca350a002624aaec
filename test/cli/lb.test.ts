/**
 * `sluice lb list` as a user runs it, over maps the load-balancer owner
 * wrote into a /sys/fs/bpf/sluice-lba-* pin dir: the JSON is what the maps
 * hold, the text has a row per frontend and a line per backend, and bad
 * flags exit 2 naming the flag.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BPFFS_MOUNT, removePinDir } from '../../src/datapath/bpffs.js';
import { openPinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { lbList, type LbListRow } from '../../src/cli/lb-list.js';
import { LbOwner } from '../../src/reconcile/lb.js';
import { runRound } from '../../src/reconcile/round.js';
import { createLbPinDir, lbEndpoint, lbService, lbSlice } from '../helpers/lb-fixtures.js';
import { sluice } from '../helpers/sluice-cli.js';

const svc = lbService;
const ep = lbEndpoint;

let pinDir = '';
let expected: LbListRow[] = [];

before(() => {
  pinDir = createLbPinDir();
  const maps = openPinnedDatapathMaps(pinDir);
  try {
    const services = [
      svc('web', '10.96.0.10', { type: 'NodePort', ports: [{ name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 }], affinitySeconds: 60 }),
      svc('empty', '10.96.0.11'),
    ];
    const slices = [lbSlice('web', [ep('10.0.0.1'), ep('10.0.0.2'), ep('10.0.0.3', { ready: false, terminating: true })])];
    const r = runRound([new LbOwner(maps.lb, { algorithm: 'maglev', maglevTableSize: 251 })], { lb: { services, slices, node: { name: 'n1' }, nodeAddresses: ['192.168.1.5'] } });
    assert.equal(r.owners[0]?.complete, true);
    expected = lbList(maps.lb);
  } finally {
    maps.close();
  }
});

after(() => {
  if (pinDir !== '') removePinDir(pinDir);
});

test('-o json: every frontend entry with its backends and their state, as the maps hold them', async () => {
  const r = await sluice('lb', 'list', '--pin-dir', pinDir, '-o', 'json');
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as LbListRow[];
  assert.deepEqual(rows, expected);
  assert.deepEqual(rows.map((x) => `${x.frontend} ${x.scope}`).sort(), [
    '10.96.0.10:80/TCP pod', '10.96.0.11:80/TCP pod', '192.168.1.5:30080/TCP external', '192.168.1.5:30080/TCP pod',
  ]);
  const web = rows.find((x) => x.frontend === '10.96.0.10:80/TCP');
  assert.deepEqual(web?.backends.map((b) => `${b.address} ${b.state}`), ['10.0.0.1:8080 active', '10.0.0.2:8080 active', '10.0.0.3:8080 serving-only']);
  assert.equal(web?.affinityTimeoutS, 60);
  assert.deepEqual(rows.filter((x) => x.masquerade).map((x) => `${x.frontend} ${x.scope}`), ['192.168.1.5:30080/TCP external'],
    'outside traffic to a Cluster-policy NodePort is masqueraded; pods\' is not');
  const empty = rows.find((x) => x.frontend === '10.96.0.11:80/TCP');
  assert.deepEqual([empty?.whenEmpty, empty?.backends], ['reject', []]);
});

test('text: a row per frontend, a line per backend with its state and slots; an empty frontend says what it does', async () => {
  const r = await sluice('lb', 'list', '--pin-dir', pinDir);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^ID\s+FRONTEND\s+SCOPE\s+SET\s+ALGORITHM\s+AFFINITY\s+BACKENDS$/);
  for (const row of expected) {
    const scope = row.masquerade ? `${row.scope}+masq` : row.scope;
    const at = lines.findIndex((l) => l.startsWith(`${row.serviceId} `) && l.includes(` ${row.frontend} `) && l.includes(` ${scope} `));
    assert.ok(at > 0, `a row for ${row.frontend} ${row.scope}`);
    if (row.backends.length === 0) {
      assert.match(lines[at] ?? '', new RegExp(`none: ${row.whenEmpty}$`));
      continue;
    }
    row.backends.forEach((b, i) => {
      const line = lines[at + i] ?? '';
      assert.ok(line.includes(`${b.backendId} => ${b.address} (${b.state}`), `${line} shows backend ${b.backendId}`);
      if (b.state === 'active') assert.ok(line.includes(`${b.slots}/${row.tableSize} slots`), line);
    });
  }
});

test('bad flags exit 2 and name the flag', async () => {
  const badOutput = await sluice('lb', 'list', '--pin-dir', pinDir, '-o', 'yaml');
  assert.equal(badOutput.code, 2);
  assert.match(badOutput.stderr, /-o\/--output: "yaml" is not one of text, json/);
  const noMaps = await sluice('lb', 'list', '--pin-dir', `${BPFFS_MOUNT}/sluice-lba-missing`);
  assert.equal(noMaps.code, 2);
  assert.match(noMaps.stderr, /--pin-dir \/sys\/fs\/bpf\/sluice-lba-missing: no load-balancer maps pinned there \(missing sl_lb_svc_v1/);
  const unknown = await sluice('lb', 'list', '--bogus');
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /unknown option '--bogus'/);
});
