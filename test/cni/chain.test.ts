/**
 * sluice-cni under the CNI project's own client, cnitool (libcni v1.3.0,
 * built by scripts/build-cni-tools), with the conflist our installer writes:
 * first plugin of a chain with Debian's portmap and loopback (spec 1.0.0,
 * negotiated from their VERSION answers), and alone at 1.1.0 for STATUS and
 * GC. Everything runs inside the test's node namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CNI_MAIN, CniNode, DEBIAN_CNI, podArgs, runProcess, sh, type PluginRun } from './helpers/harness.js';

const CNITOOL = `${process.env['SLUICE_CACHE'] ?? '/var/cache/sluice'}/cni-tools/v1.3.0/cnitool`;

function cnitool(node: CniNode, verb: string, network: string, netns: string, extra: Record<string, string> = {}): Promise<PluginRun> {
  return runProcess('nsenter', [`--net=${node.netnsPath(node.nodeNs)}`, CNITOOL, verb, network, netns], {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin',
    NETCONFPATH: node.confDir,
    CNI_PATH: `${node.binDir}:${DEBIAN_CNI}`,
    CNI_IFNAME: 'eth0',
    ...extra,
  }, '');
}

/** libcni's result cache for a network (a test that fails before DEL would leave it). */
function dropCache(network: string): void {
  const dir = '/var/lib/cni/results';
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) if (f.startsWith(`${network}-`)) rmSync(join(dir, f), { force: true });
}

/** cnitool's container id: "cnitool-" + the first 10 bytes of sha512(netns path), hex. */
function containerIdOf(netns: string): string {
  return `cnitool-${createHash('sha512').update(netns).digest('hex').slice(0, 20)}`;
}

function install(node: CniNode, name: string, extra: string[]): void {
  sh(process.execPath, [CNI_MAIN, 'install', '--bin-dir', node.binDir, '--conf-dir', node.confDir, '--name', name, '--priority', '10',
    '--agent-socket', node.socket, '--pin-root', node.pinRoot, '--ipam-dir', node.ipamDir, ...extra]);
}

test('cnitool: sluice-cni + portmap + loopback in one conflist (ADD, CHECK, DEL)', async () => {
  assert.ok(existsSync(CNITOOL), `${CNITOOL} is missing: run scripts/build-cni-tools`);
  const node = new CniNode('10.244.15.0/24');
  try {
    await node.setUp();
    const network = `chain${node.id}`;
    install(node, network, ['--chain', 'portmap,loopback']);
    const conflist = JSON.parse(readFileSync(join(node.confDir, `10-${network}.conflist`), 'utf8')) as { cniVersion: string; plugins: { type: string }[] };
    assert.equal(conflist.cniVersion, '1.0.0', 'Debian 1.1.1 plugins stop at spec 1.0.0');
    assert.deepEqual(conflist.plugins.map((p) => p.type), ['sluice-cni', 'portmap', 'loopback']);

    const ns = node.addPodNetns('chain');
    sh('ip', ['-n', ns.split('/').pop() ?? '', 'link', 'set', 'lo', 'down']);
    const env = { CNI_ARGS: podArgs('chained'), CAP_ARGS: JSON.stringify({ portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] }) };
    const add = await cnitool(node, 'add', network, ns, env);
    assert.equal(add.exitCode, 0, add.stdout + add.stderr);
    const result = add.json as { cniVersion: string; interfaces: { name: string }[]; ips: { address: string }[] };
    assert.equal(result.cniVersion, '1.0.0');
    assert.equal(result.interfaces[1]?.name, 'eth0');
    const ip = result.ips[0]?.address.split('/')[0] ?? '';
    assert.match(ip, /^10\.244\.15\.\d+$/);

    // portmap saw our result: a DNAT rule to the pod's address in the node namespace.
    const nat = node.nsExec(['iptables', '-t', 'nat', '-S']);
    assert.match(nat, new RegExp(`--dport 18080 .*--to-destination ${ip.replace(/\./g, '\\.')}:80`));
    // loopback brought lo up in the pod.
    assert.match(sh('ip', ['-n', ns.split('/').pop() ?? '', 'link', 'show', 'lo']), /UP/);

    // Debian's portmap 1.1.1 fails CHECK for an IPv4-only pod (it looks for an ip6tables chain it never
    // made: containernetworking/plugins#819), and libcni stops the chain there. Our own CHECK, with the
    // result libcni cached for the chain, must pass.
    const check = await cnitool(node, 'check', network, ns, env);
    if (check.exitCode !== 0) assert.match(check.stderr, /could not check ipv6 dnat/, check.stderr);
    const cached = readFileSync(join('/var/lib/cni/results', `${network}-${containerIdOf(ns)}-eth0`), 'utf8');
    const prevResult = (JSON.parse(cached) as { result: unknown }).result;
    const ours = await node.call({ command: 'CHECK', containerId: containerIdOf(ns), netns: ns, ifname: 'eth0' },
      { ...conflist.plugins[0], cniVersion: '1.0.0', name: network, prevResult });
    assert.equal(ours.exitCode, 0, ours.stdout);

    const del = await cnitool(node, 'del', network, ns, env);
    assert.equal(del.exitCode, 0, del.stdout + del.stderr);
    assert.doesNotMatch(node.nsExec(['iptables', '-t', 'nat', '-S']), /--dport 18080/);
    assert.deepEqual([...node.allocations(network)], []);
    assert.deepEqual(node.hostVeths(), []);
    assert.deepEqual(await node.agentClient().list(), []);
  } finally {
    dropCache(`chain${node.id}`);
    dropCache(`solo${node.id}`);
    await node.tearDown();
  }
});

test('cnitool: STATUS and GC through libcni at spec 1.1.0', async () => {
  assert.ok(existsSync(CNITOOL), `${CNITOOL} is missing: run scripts/build-cni-tools`);
  const node = new CniNode('10.244.16.0/24');
  try {
    await node.setUp();
    const network = `solo${node.id}`;
    install(node, network, []);
    const conflist = JSON.parse(readFileSync(join(node.confDir, `10-${network}.conflist`), 'utf8')) as { cniVersion: string };
    assert.equal(conflist.cniVersion, '1.1.0');
    const ns = node.addPodNetns('solo');

    const status = await cnitool(node, 'status', network, ns);
    assert.equal(status.exitCode, 0, status.stdout + status.stderr);
    const add = await cnitool(node, 'add', network, ns, { CNI_ARGS: podArgs('solo') });
    assert.equal(add.exitCode, 0, add.stdout + add.stderr);
    assert.equal(node.allocations(network).size, 1);

    // cnitool's GC passes no valid attachments: libcni DELs its cached one, then sends GC with [].
    const gc = await cnitool(node, 'gc', network, ns);
    assert.equal(gc.exitCode, 0, gc.stdout + gc.stderr);
    assert.deepEqual([...node.allocations(network)], []);
    assert.deepEqual(node.hostVeths(), []);
    assert.deepEqual(await node.agentClient().list(), []);

    await node.stopAgent();
    const down = await cnitool(node, 'status', network, ns);
    assert.notEqual(down.exitCode, 0);
    assert.match(down.stderr, /not reachable/);
  } finally {
    dropCache(`chain${node.id}`);
    dropCache(`solo${node.id}`);
    await node.tearDown();
  }
});
