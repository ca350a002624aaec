/**
 * Child of test/cni/rtnl-read.test.ts, run inside the test's node netns
 * (`ip netns exec`): every read CHECK and GC make, once through the `ip`
 * path and once through the addon's rtnetlink dumps, as one JSON line on
 * stdout for the test to compare.
 *
 *   node rtnl-read.js <pod netns path> <missing netns path> <ifname>...
 */
import { spawnSync } from 'node:child_process';
import { spawnCommand } from '../../../src/cni/command.js';
import { listHostLinks, listHostLinksSync } from '../../../src/cni/host-links.js';
import { ipBatchWith } from '../../../src/cni/iproute.js';
import { linkListerSync, netlinkOps, RtnlError } from '../../../src/cni/rtnl.js';
import { inspectPod } from '../../../src/cni/wiring.js';
import { addon } from '../../../src/datapath/addon.js';

interface Settled {
  readonly ok: boolean;
  readonly value?: unknown;
  readonly errno?: number;
  readonly detail?: string;
}

async function settle<T>(f: () => T | Promise<T>): Promise<Settled> {
  try {
    return { ok: true, value: await f() };
  } catch (e) {
    return e instanceof RtnlError ? { ok: false, errno: e.errno, detail: e.detail } : { ok: false, detail: String(e) };
  }
}

/** One read both ways. */
interface Pair {
  readonly what: string;
  readonly ip: Settled;
  readonly netlink: Settled;
}

const [podNetns, missingNetns, ...ifnames] = process.argv.slice(2);
if (podNetns === undefined || missingNetns === undefined) throw new Error('usage: rtnl-read <pod netns> <missing netns> <ifname>...');
const viaIp = ipBatchWith(spawnCommand);
const viaNetlink = Object.assign(ipBatchWith(spawnCommand), { netlink: netlinkOps });
const lister = linkListerSync(addon());
const pairs: Pair[] = [];
const both = async (what: string, f: (ip: typeof viaNetlink | typeof viaIp) => unknown): Promise<void> => {
  pairs.push({ what, ip: await settle(() => f(viaIp)), netlink: await settle(() => f(viaNetlink)) });
};

for (const ifname of ifnames) await both(`pod view of ${ifname}`, (ip) => inspectPod(ip, podNetns, ifname));
await both('pod view in a missing netns', (ip) => inspectPod(ip, missingNetns, 'eth0'));
await both('links of our netns', (ip) => listHostLinks(ip));
await both('links of the pod netns', (ip) => listHostLinks(ip, podNetns));
await both('links of a missing netns', (ip) => listHostLinks(ip, missingNetns));
pairs.push({ what: 'links of our netns, sync', ip: await settle(() => listHostLinksSync()), netlink: await settle(() => listHostLinksSync(undefined, lister)) });
pairs.push({ what: 'links of the pod netns, sync', ip: await settle(() => listHostLinksSync(podNetns)), netlink: await settle(() => listHostLinksSync(podNetns, lister)) });
pairs.push({ what: 'links of a missing netns, sync', ip: await settle(() => listHostLinksSync(missingNetns)), netlink: await settle(() => listHostLinksSync(missingNetns, lister)) });

// The addon's link dump field by field against `ip -j -d link show` (more than LinkSummary carries).
const shown = JSON.parse(spawnSync('ip', ['-j', '-d', 'link', 'show'], { encoding: 'utf8' }).stdout) as Record<string, unknown>[];
const fromIp = shown.map((l) => ({
  ifindex: l['ifindex'], name: l['ifname'], up: (l['flags'] as string[]).includes('UP'), mac: l['address'], mtu: l['mtu'],
  ...(typeof l['ifalias'] === 'string' ? { alias: l['ifalias'] } : {}),
  ...((l['linkinfo'] as { info_kind?: string } | undefined)?.info_kind !== undefined ? { kind: (l['linkinfo'] as { info_kind: string }).info_kind } : {}),
}));
pairs.push({ what: 'the addon\'s link dump, every field', ip: { ok: true, value: fromIp }, netlink: await settle(() => addon().rtnlLinkList()) });

process.stdout.write(`${JSON.stringify(pairs)}\n`);
