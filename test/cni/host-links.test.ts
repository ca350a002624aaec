/**
 * The host-link view shared by CNI GC and the agent's endpoint sweep
 * (src/cni/host-links.ts), in a real namespace: our veths by alias, an
 * attachment's veth by name or by ifindex + alias, a failed listing throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { hasHostVeth, listHostLinks, listHostLinksSync, ourVethIfindexes } from '../../src/cni/host-links.js';
import { attachmentNames, vethAlias } from '../../src/cni/names.js';
import { RtnlError } from '../../src/cni/rtnl.js';
import { addon } from '../../src/datapath/addon.js';

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
    const links = listHostLinksSync(addon(), path);
    assert.deepEqual(await listHostLinks(path), links, 'the async listing (CNI GC) sees the same');
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
    const after = listHostLinksSync(addon(), path);
    assert.deepEqual(after.map((l) => l.ifname), ['lo']);
    assert.equal(hasHostVeth(after, a, name, mine.ifindex), false);
  } finally {
    spawnSync('ip', ['netns', 'delete', ns]);
  }
  const gone = (e: unknown): boolean => e instanceof RtnlError && e.errno === 2 && e.detail.includes(ns);
  assert.throws(() => listHostLinksSync(addon(), path), gone, 'a namespace that is gone is an error (ENOENT naming it), never an empty listing');
  await assert.rejects(listHostLinks(path), gone, 'the same for the async listing');
});
