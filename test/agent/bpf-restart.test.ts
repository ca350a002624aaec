/**
 * Ids across restarts (docs/agent.md): sluice-agent --datapath bpf against
 * the real control plane keeps its compiler seed (identities, rule ids,
 * revisions) in stateDir/compile-seed.json after each applied sync. Rule and
 * identity ids are made to differ from what a fresh allocation would give
 * (a policy and a pod deleted while the agent runs), then:
 *  - SIGTERM, restart with the seed → the first plan has 0 operations and
 *    the pinned ipcache/iphost/endpoint/policy maps are byte-identical;
 *  - restart without the seed → ids are reassigned, the first plan is not
 *    empty (what the seed saves).
 * Maps in a private pin dir, removed in finally; fails, never skips, without
 * the control-plane binaries or the BPF object.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMPILE_SEED_FILE, decodeSeed } from '../../src/agent/datapath/seed-file.js';
import { EndpointClient } from '../../src/endpoint/client.js';
import type { RawMap } from '../../src/datapath/api.js';
import { BPFFS_MOUNT, ensureBpffsMounted, removePinDir } from '../../src/datapath/bpffs.js';
import { openPinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { ControlPlane } from '../../src/lab/controlplane/controlplane.js';
import { AgentProcess } from './helpers/agent-process.js';
import { until } from './helpers/wait.js';

const NS = 'sluice-agt-seed';

const pod = (name: string, ip: string, labels: string): string => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${NS}, labels: ${labels}}
spec:
  nodeName: node-a
  containers: [{name: c, image: example.invalid/x:1, ports: [{name: http, containerPort: 8080}]}]
`;

const policy = (name: string, spec: string): string => `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ${name}, namespace: ${NS}}
spec: ${spec}
`;

const objects = [
  `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}, labels: {team: a}}`,
  'apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\nspec: {podCIDR: 10.244.1.0/24}',
  pod('aaa', '10.244.1.5', '{app: aaa}'),
  pod('web', '10.244.1.10', '{app: web}'),
  pod('client', '10.244.1.11', '{app: client}'),
  policy('p-allow', '{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{ipBlock: {cidr: 192.0.2.0/24}}], ports: [{port: 443}]}]}'),
  policy('p-old', '{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: http}]}]}'),
].join('\n---\n');

const ips: Record<string, string> = { aaa: '10.244.1.5', web: '10.244.1.10', client: '10.244.1.11' };

/** Every key and value of the maps the agent writes, as hex, by map. */
function dumpMaps(pinDir: string): Record<string, string[]> {
  const m = openPinnedDatapathMaps(pinDir);
  try {
    const maps: [string, RawMap][] = [['iphost', m.ipcache.hosts.raw], ['ipcache', m.ipcache.prefixes.raw], ['endpoints', m.endpoints.raw], ['policy', m.policy.raw]];
    return Object.fromEntries(maps.map(([name, raw]) => [name, [...raw.keys()].map((k) => `${k.toString('hex')}=${raw.lookup(k)?.toString('hex') ?? ''}`).sort()]));
  } finally {
    m.close();
  }
}

test('a restarted agent keeps every id: first plan empty, maps byte-identical; without the seed ids are reassigned', async () => {
  ensureBpffsMounted();
  const pinDir = `${BPFFS_MOUNT}/sluice-t-ag-${randomBytes(6).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-t-ag-seed-'));
  const stateDir = join(dir, 'state');
  const seedPath = join(stateDir, COMPILE_SEED_FILE);
  let cp: ControlPlane | undefined;
  let agent: AgentProcess | undefined;
  try {
    cp = await ControlPlane.start();
    const plane = cp;
    const kubectl = (args: string[], input?: string): Promise<string> => plane.kubectl(args, input === undefined ? {} : { input });
    await kubectl(['apply', '-f', '-'], objects);
    for (const [name, ip] of Object.entries(ips)) {
      await kubectl(['patch', 'pod', name, '-n', NS, '--subresource=status', '--type=merge', '-p',
        JSON.stringify({ status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } })]);
    }
    const socket = join(dir, 'agent.sock');
    const argv = [
      '--datapath', 'bpf', '--pin-dir', pinDir, '--kubeconfig', cp.kubeconfigPath, '--node-name', 'node-a',
      '--state-dir', stateDir, '--endpoint-socket', socket, '--http-listen', '127.0.0.1:0',
    ];

    agent = new AgentProcess(argv);
    await agent.ready(30_000);
    assert.equal((await agent.line('no compile seed: ids start afresh'))['identities'], 0);
    const client = new EndpointClient(socket);
    for (const [i, name] of ['web', 'client'].entries()) {
      await client.register({
        containerId: `seed${i}`, ifname: 'eth0', netns: `/var/run/netns/sluice-ag-seed${i}`, podNamespace: NS, podName: name,
        ip: ips[name] ?? '', hostIfname: `sluice-ag-s${i}`, hostIfindex: 4300 + i,
      });
    }
    // Ids a fresh allocation would not give: p-old's rule id and aaa's identity go away.
    await kubectl(['delete', 'networkpolicy', 'p-old', '-n', NS]);
    await kubectl(['delete', 'pod', 'aaa', '-n', NS, '--grace-period=0', '--force']);
    await kubectl(['apply', '-f', '-'], policy('p-new',
      '{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], egress: [{to: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 8080}]}]}'));
    const saved = await until('the seed without p-old and aaa, with p-new', () => {
      const seed = decodeSeed(readFileSync(seedPath, 'utf8'), seedPath);
      const policies = [...seed.ruleTable.byId.values()].map((r) => r.policy);
      const labels = [...seed.identityTable.byId.values()].map((s) => s.key).join(' ');
      return policies.includes(`${NS}/p-new`) && !policies.includes(`${NS}/p-old`) && !labels.includes('pod:app=aaa') && seed.revisions.size === 2 ? seed : undefined;
    }, 20_000);
    assert.equal(statSync(seedPath).mode & 0o777, 0o600);
    assert.ok(saved.ruleTable.next > saved.ruleTable.byId.size + 1, 'a rule id was freed: p-new has an id a fresh start would not give it');
    assert.equal(await agent.stop(), 0);
    agent = undefined;
    const before = dumpMaps(pinDir);
    assert.ok(before['policy'] !== undefined && before['policy'].length > 0, 'policy entries were written');

    agent = new AgentProcess(argv);
    await agent.ready(30_000);
    const loaded = await agent.line('compile seed loaded: ids kept from the previous run');
    assert.equal(loaded['rules'], saved.ruleTable.byId.size);
    assert.equal((await agent.line('first full sync is in the maps'))['operations'], 0, 'the first plan after a restart with the seed is empty');
    assert.equal(await agent.stop(), 0);
    agent = undefined;
    assert.deepEqual(dumpMaps(pinDir), before, 'the maps are byte-identical');

    rmSync(seedPath);
    agent = new AgentProcess(argv);
    await agent.ready(30_000);
    await agent.line('no compile seed: ids start afresh');
    const fresh = Number((await agent.line('first full sync is in the maps'))['operations']);
    assert.ok(fresh > 0, `without the seed ids are reassigned and rewritten (${fresh} operations)`);
    assert.equal(await agent.stop(), 0);
    agent = undefined;
  } finally {
    agent?.kill();
    await cp?.stop();
    removePinDir(pinDir);
    rmSync(dir, { recursive: true, force: true });
  }
});
