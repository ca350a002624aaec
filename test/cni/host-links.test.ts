/**
 * The host-link view shared by CNI GC and the agent's endpoint sweep
 * (src/cni/host-links.ts), in a real namespace: our veths by alias, an
 * attachment's veth by name or by ifindex + alias, a failed listing throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { spawnCommand } from '../../src/cni/command.js';
import { hasHostVeth, listHostLinks, listHostLinksSync, ourVethIfindexes } from '../../src/cni/host-links.js';
import { ipBatchWith } from '../../src/cni/iproute.js';
import { attachmentNames } from '../../src/cni/names.js';
import { vethAlias } from '../../src/cni/wiring.js';

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

test('lists links in another namespace; finds an attachment\'s veth by name or by ifindex with its alias', async () => {
  const ns = `sluice-sw-${randomBytes(4).toString('hex')}`;
  const path = `/var/run/netns/${ns}`;
  const a = { containerId: 'hl-pod', ifname: 'eth0' };
  const other = { containerId: 'hl-other', ifname: 'eth0' };
  const name = attachmentNames(a).hostIfname;
  ip('netns', 'add', ns);
  try {
    ip('-n', ns, 'link', 'add', name, 'type', 'veth', 'peer', 'name', 'foreign0');
    ip('-n', ns, 'link', 'set', 'dev', name, 'alias', vethAlias(a));
    const links = listHostLinksSync(path);
    assert.deepEqual(await listHostLinks(ipBatchWith(spawnCommand), path), links, 'the async listing (CNI GC) sees the same');
    const mine = links.find((l) => l.ifname === name);
    const foreign = links.find((l) => l.ifname === 'foreign0');
    assert.ok(mine !== undefined && foreign !== undefined, JSON.stringify(links));
    assert.equal(mine.alias, vethAlias(a));
    assert.ok(links.some((l) => l.ifname === 'lo'));
    assert.deepEqual([...ourVethIfindexes(links)], [mine.ifindex], 'only links with our alias');
    assert.equal(hasHostVeth(links, a, name, 999_999), true, 'by name (a replacement veth has another ifindex)');
    assert.equal(hasHostVeth(links, a, 'lxcrenamed000', mine.ifindex), true, 'by ifindex with the alias');
    assert.equal(hasHostVeth(links, other, attachmentNames(other).hostIfname, foreign.ifindex), false, 'an ifindex reused by another link does not count');
    ip('-n', ns, 'link', 'del', name); // its peer goes with it
    const after = listHostLinksSync(path);
    assert.deepEqual(after.map((l) => l.ifname), ['lo']);
    assert.equal(hasHostVeth(after, a, name, mine.ifindex), false);
  } finally {
    spawnSync('ip', ['netns', 'delete', ns]);
  }
  assert.throws(() => listHostLinksSync(path), /nsenter/, 'a namespace that is gone is an error, never an empty listing');
  await assert.rejects(listHostLinks(ipBatchWith(spawnCommand), path), /nsenter/, 'the same for the async listing');
});
