/**
 * The endpoint's tc programs on the host veth, through src/datapath. Imported
 * lazily (`await import`): the native addon and the map modules cost ~25 ms
 * of start-up that CHECK without programs, STATUS and VERSION do not pay.
 *
 * The CNI attaches, not the agent: attaching is a property of the
 * interface the CNI just made, in the namespace the CNI runs in, and it must
 * happen before the interface comes up — so the plugin that controls that
 * order does it, and an agent that is down cannot leave a pod up without
 * programs. The programs drop every packet until the agent has written the
 * endpoint's entry (fail closed), so attaching before the agent's policy
 * lands is safe. The maps are the agent's, pinned under pinRoot.
 *
 * One node-shared program instance (src/datapath/lxc-shared.ts): ADD writes
 * the veth's ifindex → {endpoint id, pod address} into sl_lxc_v1, then
 * attaches the pinned programs by fd — the object is loaded (verifier) only
 * by the first ADD of a build on a node. The entry is written before the
 * attach, so the programs never see the interface unknown once the pod is
 * up; DEL deletes it after the veth (and with it the filters) is gone,
 * through releaseLxcInterfaces (src/datapath/lxc-shared.ts), the one path
 * that deletes sl_lxc_v1 entries.
 */
import { CniCode, CniError } from './errors.js';

/** One slot per direction: a reattach replaces the program atomically. */
const TC_SLOT = { handle: 1, priority: 1 } as const;

export interface DatapathTarget {
  readonly hostIfname: string;
  readonly hostIfindex: number;
  readonly endpointId: number;
  /** The pod's IPv4 address (the program's source check). */
  readonly ipv4: string;
}

export interface AttachedPrograms {
  readonly fromContainer: number;
  readonly toContainer: number;
}

/** The node's shared programs and sl_lxc_v1, open; attach() any number of interfaces, then close(). */
export interface PreparedDatapath {
  /** True when preparing loaded the shared object (first ADD of its build on the node). */
  readonly loaded: boolean;
  /** Writes the interface's sl_lxc_v1 entry, then attaches both programs on it. */
  attach(t: DatapathTarget): AttachedPrograms;
  /** Releases our fds: the tc filters hold the programs, the pins hold programs and maps. */
  close(): void;
}

/**
 * Opens (the first time for a build on the node: loads and pins) the shared
 * programs and opens sl_lxc_v1. Needs nothing of the pod, so ADD does it
 * while the agent works on the registration.
 */
export async function prepareDatapath(pinRoot: string, objectPath: string | undefined): Promise<PreparedDatapath> {
  const [{ openSharedLxc, openPinnedLxcInterfaces }, { attachTc }, { parseIpv4 }] = await Promise.all([
    import('../datapath/lxc-shared.js'), import('../datapath/tc.js'), import('../datapath/maps/ipv4.js'),
  ]);
  let shared: ReturnType<typeof openSharedLxc> | undefined;
  let ifaces: ReturnType<typeof openPinnedLxcInterfaces>;
  try {
    shared = openSharedLxc({ pinRoot, ...(objectPath !== undefined ? { objectPath } : {}) });
    ifaces = openPinnedLxcInterfaces(pinRoot);
    if (ifaces === undefined) throw new Error(`sl_lxc_v1 is not pinned in ${pinRoot} after loading the shared programs`);
  } catch (e) {
    shared?.close();
    throw new CniError(CniCode.DATAPATH_FAILED, `cannot open the node's lxc programs (pin root ${pinRoot}): ${(e as Error).message}`);
  }
  const programs = shared;
  const map = ifaces;
  return {
    loaded: programs.loaded,
    attach(t: DatapathTarget): AttachedPrograms {
      try {
        map.map.update(t.hostIfindex, { endpointId: t.endpointId, ipv4: parseIpv4(t.ipv4) });
        const ref = { ifindex: t.hostIfindex };
        const from = attachTc(ref, 'ingress', programs.fromContainerFd, { ...TC_SLOT, replace: true });
        const to = attachTc(ref, 'egress', programs.toContainerFd, { ...TC_SLOT, replace: true });
        return { fromContainer: from.progId, toContainer: to.progId };
      } catch (e) {
        throw new CniError(CniCode.DATAPATH_FAILED,
          `cannot attach the endpoint's programs to ${t.hostIfname} (ifindex ${t.hostIfindex}, endpoint ${t.endpointId}, pin root ${pinRoot}): ${(e as Error).message}`);
      }
    },
    close(): void {
      map.close();
      programs.close();
    },
  };
}

/**
 * Deletes the interface's sl_lxc_v1 entry (after its veth is gone) through
 * the map's one deletion path (releaseLxcInterfaces); false when there was
 * none. Ifindexes are allocated cyclically, so a gone veth's index is not
 * handed to the next one at once.
 */
export async function releaseInterface(pinRoot: string, ifindex: number): Promise<boolean> {
  const { releaseLxcInterfaces } = await import('../datapath/lxc-shared.js');
  return releaseLxcInterfaces(pinRoot, [{ ifindex }]).length > 0;
}

export interface HostDatapathView {
  /** Program ids on the host veth's hooks (undefined: nothing there). */
  readonly fromContainer: number | undefined;
  readonly toContainer: number | undefined;
  /** The veth's sl_lxc_v1 entry (ipv4 dotted), or undefined. */
  readonly entry: { readonly endpointId: number; readonly ipv4: string } | undefined;
}

/** What CHECK compares: both hooks and the interface's entry. */
export async function inspectDatapath(pinRoot: string, hostIfindex: number): Promise<HostDatapathView> {
  const [{ queryTc }, { openPinnedLxcInterfaces }, { formatIpv4 }] = await Promise.all([
    import('../datapath/tc.js'), import('../datapath/lxc-shared.js'), import('../datapath/maps/ipv4.js'),
  ]);
  const ref = { ifindex: hostIfindex };
  const ifaces = openPinnedLxcInterfaces(pinRoot);
  let entry: HostDatapathView['entry'];
  try {
    const e = ifaces?.map.lookup(hostIfindex);
    entry = e === undefined ? undefined : { endpointId: e.endpointId, ipv4: formatIpv4(e.ipv4) };
  } finally {
    ifaces?.close();
  }
  return { fromContainer: queryTc(ref, 'ingress', TC_SLOT)?.progId, toContainer: queryTc(ref, 'egress', TC_SLOT)?.progId, entry };
}

/**
 * GC of the node's shared-datapath state: sl_lxc_v1 entries of interfaces
 * that are no longer one of our host veths, and pins of other builds'
 * programs. Returns the ifindexes whose entries were removed.
 *
 * The entries are read before liveIfindexes() lists the links: an ADD running
 * meanwhile creates its veth before it writes its entry, so an entry in the
 * snapshot belongs to a veth the later listing sees (or to one already gone),
 * and an entry written after the snapshot is not judged at all. An entry is
 * deleted only while it still names the endpoint the snapshot saw.
 */
export async function collectInterfaces(pinRoot: string, liveIfindexes: () => Promise<ReadonlySet<number>>, objectPath: string | undefined): Promise<number[]> {
  const { openPinnedLxcInterfaces, releaseLxcInterfaces, removeStaleSharedLxc, sharedLxcDir } = await import('../datapath/lxc-shared.js');
  const ifaces = openPinnedLxcInterfaces(pinRoot);
  if (ifaces === undefined) return [];
  let snapshot: { ifindex: number; endpointId: number }[];
  try {
    snapshot = [...ifaces.map.entries()].map(([ifindex, e]) => ({ ifindex, endpointId: e.endpointId }));
  } finally {
    ifaces.close();
  }
  const live = await liveIfindexes();
  const removed = releaseLxcInterfaces(pinRoot, snapshot.filter((e) => !live.has(e.ifindex)));
  removeStaleSharedLxc(pinRoot, sharedLxcDir(pinRoot, objectPath));
  return removed;
}
