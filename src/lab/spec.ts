/**
 * The lab spec (what the user asks for) and the plan resolved from it (every
 * name, address and id the lab will create). Resolution is pure and checks
 * everything up front, so a bad spec fails before anything is created, with
 * the field at fault named.
 */
import { LabError } from './errors.js';
import { formatIpv4, formatIpv4Prefix, parseIpv4Prefix, type Ipv4Prefix } from '../datapath/maps/ipv4.js';
import {
  LAB_NAME_RE,
  type LabPaths,
  POD_NAME_RE,
  RESERVED_POD_RE,
  hostIfname,
  labHash,
  nodeNetnsName,
  pinRootFor,
  podNetnsName,
} from './names.js';

export interface LabSpec {
  /** default "dev" */
  readonly name?: string;
  /** Pod names; default ["a", "b"]. */
  readonly pods?: readonly string[];
  /** Pod addresses come from here, in order; default 10.<hash of name>.0.0/24. */
  readonly cidr?: string;
  /** Load and attach the lxc programs (default true); false = plain veth baseline. */
  readonly datapath?: boolean;
}

/** The pods' gateway: link-local, same on every pod (see network.ts). */
export const GATEWAY_IPV4 = '169.254.1.1';
/** First allocated identity (SLUICE_IDENTITY_FIRST in sluice_abi.h). */
export const FIRST_IDENTITY = 256;
export const MAX_PODS = 250;

export interface PodPlan {
  readonly name: string;
  readonly netns: string;
  readonly ipv4: string;
  /** Host side of the veth, in the node namespace. */
  readonly hostIfname: string;
  readonly hostMac: string;
  /** Pod side is always eth0. */
  readonly podMac: string;
  readonly endpointId: number;
  readonly identity: number;
  /** A several-node cluster lab's pod: its Node and that node's namespace (absent: the plan's nodeNetns). */
  readonly node?: string;
  readonly nodeNetns?: string;
}

export interface LabPlan {
  readonly name: string;
  readonly nodeNetns: string;
  readonly cidr: string;
  readonly gateway: string;
  readonly pinRoot: string;
  readonly datapath: boolean;
  readonly pods: readonly PodPlan[];
}

export function resolveSpec(spec: LabSpec, paths: LabPaths): LabPlan {
  const name = spec.name ?? 'dev';
  checkLabName(name);
  const podNames = spec.pods ?? ['a', 'b'];
  if (podNames.length === 0 || podNames.length > MAX_PODS) {
    throw new LabError('invalid-spec', `pods: want 1..${MAX_PODS} pods, got ${podNames.length}`, 'pods');
  }
  const seen = new Set<string>();
  podNames.forEach((pod, i) => {
    const field = `pods[${i}]`;
    if (!POD_NAME_RE.test(pod)) {
      throw new LabError('invalid-spec', `pod "${pod}": want a DNS label of at most 32 characters`, field);
    }
    if (RESERVED_POD_RE.test(pod)) throw new LabError('invalid-spec', `pod "${pod}": name is reserved for the lab's nodes and fabric`, field);
    if (seen.has(pod)) throw new LabError('invalid-spec', `pod "${pod}": listed twice`, field);
    seen.add(pod);
  });

  const cidrText = spec.cidr ?? `10.${labHash(name) % 256}.0.0/24`;
  const cidr = parseCidr(cidrText);
  // .0 and .1 of the block stay unused (network address, customary router),
  // and the last one (broadcast) too: pods get /32s, but people read addresses.
  const usable = 2 ** (32 - cidr.prefixlen) - 3;
  if (usable < podNames.length) {
    throw new LabError('invalid-spec', `cidr ${cidrText}: room for ${Math.max(usable, 0)} pods, need ${podNames.length}`, 'cidr');
  }

  const hash = labHash(name);
  const pods = podNames.map((pod, i): PodPlan => ({
    name: pod,
    netns: podNetnsName(name, pod),
    ipv4: formatIpv4(cidr.addr + 2 + i),
    hostIfname: hostIfname(name, i),
    hostMac: labMac(hash, i, 1),
    podMac: labMac(hash, i, 2),
    endpointId: i + 1,
    identity: FIRST_IDENTITY + i,
  }));
  return {
    name,
    nodeNetns: nodeNetnsName(name),
    cidr: formatIpv4Prefix(cidr),
    gateway: GATEWAY_IPV4,
    pinRoot: pinRootFor(paths, name),
    datapath: spec.datapath ?? true,
    pods,
  };
}

function parseCidr(text: string): Ipv4Prefix {
  try {
    return parseIpv4Prefix(text);
  } catch (e) {
    throw new LabError('invalid-spec', `cidr: ${(e as Error).message}`, 'cidr');
  }
}

/** Lab names are checked wherever one enters (spec, down, status, exec). */
export function checkLabName(name: string): void {
  if (!LAB_NAME_RE.test(name)) {
    throw new LabError('invalid-spec', `lab name "${name}": want 1-20 characters of [a-z0-9]`, 'name');
  }
}

/**
 * Fixed MACs (locally administered, unicast) so the static neighbour entries
 * can be written without reading addresses back from the kernel.
 */
function labMac(hash: number, index: number, side: 1 | 2): string {
  // Bytes 3-4 are the same hash digits as in the host ifname (names.ts).
  const bytes = [0x02, 0x5c, hash >>> 24, (hash >>> 16) & 255, index & 255, side];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
