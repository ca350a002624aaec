/**
 * The `ip -batch` path of ADD and DEL (SLUICE_CNI_NETLINK=0), kept for
 * comparison and as a way out should the addon's rtnetlink path misbehave:
 * it must still build and remove the same attachment. An `ip` wrapper first
 * on PATH records every invocation, so the test knows which path ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniNode, podArgs } from './helpers/harness.js';

/** Lines the wrapper logged, one per `ip` run ("-batch -" and its flags). */
function ipRuns(log: string): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') : [];
}

function podAddresses(netns: string): string[] {
  const r = spawnSync('nsenter', [`--net=${netns}`, 'ip', '-j', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  const links = JSON.parse(r.stdout) as { addr_info?: { local: string; prefixlen: number }[] }[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => `${a.local}/${String(a.prefixlen)}`));
}

test('SLUICE_CNI_NETLINK=0: ADD, CHECK and DEL through ip -batch build and remove the same attachment; the default never runs ip for ADD', async () => {
  const node = new CniNode('10.244.26.0/24');
  try {
    await node.setUp({ agent: true }); // agent in the root netns: the shim hands over to the Node plugin, which sees our env
    const bin = join(node.dir, 'ip-wrapper');
    const log = join(node.dir, 'ip.log');
    mkdirSync(bin, { recursive: true });
    const ipPath = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(join(bin, 'ip'), `#!/bin/sh\necho "$*" >> ${log}\nexec ${ipPath} "$@"\n`);
    chmodSync(join(bin, 'ip'), 0o755);
    const PATH = `${bin}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`;

    const netns = node.addPodNetns('viaip');
    const call = { containerId: 'ctr-ip', netns, ifname: 'eth0', args: podArgs('viaip') };
    const add = await node.call({ ...call, command: 'ADD', env: { PATH, SLUICE_CNI_NETLINK: '0' } }, node.conf());
    assert.equal(add.exitCode, 0, add.stdout + add.stderr);
    const addRuns = ipRuns(log);
    assert.ok(addRuns.filter((l) => l.includes('-batch')).length >= 2, `ADD ran ip -batch for the host and the pod side: ${JSON.stringify(addRuns)}`);
    const ip = (add.json?.['ips'] as { address: string }[] | undefined)?.[0]?.address;
    assert.ok(ip !== undefined && ip.startsWith('10.244.26.'), add.stdout);
    assert.deepEqual(podAddresses(netns), [ip], 'the pod has exactly its address');
    const check = await node.call({ ...call, command: 'CHECK', env: { PATH, SLUICE_CNI_NETLINK: '0' } }, node.conf({ prevResult: add.json }));
    assert.equal(check.exitCode, 0, check.stdout + check.stderr);

    const before = ipRuns(log).length;
    const del = await node.call({ ...call, command: 'DEL', env: { PATH, SLUICE_CNI_NETLINK: '0' } }, node.conf());
    assert.equal(del.exitCode, 0, del.stdout + del.stderr);
    assert.ok(ipRuns(log).length > before, 'DEL ran ip');
    assert.deepEqual(podAddresses(netns), [], 'the pod end went with the host veth');
    assert.equal(node.allocations().size, 0);

    // The default (netlink) path, same wrapper on PATH: ADD starts no ip at all.
    writeFileSync(log, '');
    const netns2 = node.addPodNetns('vianl');
    const add2 = await node.call({ command: 'ADD', containerId: 'ctr-nl', netns: netns2, ifname: 'eth0', args: podArgs('vianl'), env: { PATH } }, node.conf());
    assert.equal(add2.exitCode, 0, add2.stdout + add2.stderr);
    assert.deepEqual(ipRuns(log), [], 'the netlink path ran no ip');
    assert.equal(podAddresses(netns2).length, 1);
  } finally {
    await node.tearDown();
  }
});
