/**
 * The endpoint's tc programs on the host veth, through src/datapath. Imported
 * lazily (`await import`): the native addon and the map modules cost ~25 ms
 * of start-up that DEL, CHECK without programs, STATUS, GC and VERSION do not
 * pay.
 *
 * The CNI loads and attaches, not the agent: attaching is a property of the
 * interface the CNI just made, in the namespace the CNI runs in, and it must
 * happen before the interface comes up — so the plugin that controls that
 * order does it, and an agent that is down cannot leave a pod up without
 * programs. The programs drop every packet until the agent has written the
 * endpoint's entry (fail closed), so attaching before the agent's policy
 * lands is safe. The maps are the agent's, pinned under pinRoot.
 */
import { CniCode, CniError } from './errors.js';

/** One slot per direction: a reattach replaces the program atomically. */
const TC_SLOT = { handle: 1, priority: 1 } as const;

export interface DatapathTarget {
  readonly pinRoot: string;
  readonly objectPath: string | undefined;
  readonly hostIfname: string;
  readonly endpointId: number;
  /** The pod's IPv4 address (the program's source check). */
  readonly ipv4: string;
}

export interface AttachedPrograms {
  readonly fromContainer: number;
  readonly toContainer: number;
}

export async function attachPrograms(t: DatapathTarget): Promise<AttachedPrograms> {
  const [{ loadLxc }, { attachTc }, { parseIpv4 }] = await Promise.all([
    import('../datapath/lxc.js'), import('../datapath/tc.js'), import('../datapath/maps/ipv4.js'),
  ]);
  let lxc: ReturnType<typeof loadLxc> | undefined;
  try {
    lxc = loadLxc({
      pinRoot: t.pinRoot,
      endpoint: { endpointId: t.endpointId, ipv4: parseIpv4(t.ipv4) },
      ...(t.objectPath !== undefined ? { objectPath: t.objectPath } : {}),
    });
    const ref = { ifname: t.hostIfname };
    const from = attachTc(ref, 'ingress', lxc.fromContainer.fd, { ...TC_SLOT, replace: true });
    const to = attachTc(ref, 'egress', lxc.toContainer.fd, { ...TC_SLOT, replace: true });
    return { fromContainer: from.progId, toContainer: to.progId };
  } catch (e) {
    throw new CniError(CniCode.DATAPATH_FAILED,
      `cannot attach the endpoint's programs to ${t.hostIfname} (endpoint ${t.endpointId}, pin root ${t.pinRoot}): ${(e as Error).message}`);
  } finally {
    // The tc filters hold the programs, the pins hold the maps.
    lxc?.close();
  }
}

/** Program ids on the host veth's hooks (undefined: nothing there). */
export async function queryPrograms(hostIfname: string): Promise<{ fromContainer: number | undefined; toContainer: number | undefined }> {
  const { queryTc } = await import('../datapath/tc.js');
  const ref = { ifname: hostIfname };
  return { fromContainer: queryTc(ref, 'ingress', TC_SLOT)?.progId, toContainer: queryTc(ref, 'egress', TC_SLOT)?.progId };
}
