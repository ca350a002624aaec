/**
 * Owner of this node's routes to the other nodes' pods: not a BPF map but
 * the kernel's routing table (and, in vxlan mode, one vxlan device with its
 * FDB and neighbour entries), read back and written through a port
 * (NodeNetworkPort: rtnetlink in src/datapath/routes.ts, a fake in tests).
 * Desired state comes from the Node objects: every other node with a
 * podCIDR and an InternalIP is a peer.
 *
 * - native: `<peer podCIDR> via <peer InternalIP> dev <fabric device>`; the
 *   fabric carries pod addresses as they are (one L2 segment, or a router
 *   that knows the podCIDRs).
 * - vxlan: device sluice_vxlan (VNI, UDP port, local = this node's
 *   InternalIP, on the fabric device, no learning), MTU the fabric's minus
 *   50 (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14). Per peer:
 *   `<podCIDR> via <podCIDR's network address> dev sluice_vxlan onlink`, a
 *   neighbour entry for that next hop → the peer's VTEP MAC, an FDB entry
 *   VTEP MAC → the peer's InternalIP. VTEP MACs are derived from the
 *   InternalIP (02:5c:<4 address bytes>), so no node needs to publish one.
 *
 * The fabric program (bpf/host.c: a packet for a local pod whose source
 * claims a local pod address drops; Services reached from outside the node,
 * masqueraded to this node's InternalIP) is attached on the fabric device,
 * and in vxlan mode on the vxlan device, once this node's podCIDR is known,
 * and again when it, the devices or the InternalIP change (and once per
 * process: replace).
 *
 * The routes carry their own protocol number (ROUTE_PROTOCOL), so the owner
 * reads back and deletes only routes it wrote. Upserts run in the PUBLISH
 * phase, deletes in RETIRE.
 *
 * Each route is mirrored into sl_noderoute_v1 (podCIDR → device, next hop,
 * device MTU), where the pods' programs look it up to send a packet on
 * themselves (bpf/lib/host-routing.h): written after the kernel route in
 * PUBLISH, deleted before it in RETIRE, so the programs learn a route after
 * the kernel and forget it first.
 */
import type { NodeRoute } from '../datapath/generated/abi.js';
import { parseIpv4 } from '../datapath/maps/ipv4.js';
import { deleteAll, upsertAll, type MapStore } from './map-writes.js';
import { MapView } from './map-view.js';
import { Phase, type Reconciler, type StepFailure, type WriteStep } from './reconciler.js';
import { stepFailure } from './round.js';

/** rtm_protocol of the routes this owner writes (unassigned in /etc/iproute2/rt_protos). */
export const ROUTE_PROTOCOL = 211;
export const VXLAN_IFNAME = 'sluice_vxlan';
/** Outer IPv4 + UDP + VXLAN + inner Ethernet. */
export const VXLAN_OVERHEAD = 50;
export const AF_INET = 2;
export const AF_BRIDGE = 7;

export type RoutingMode = 'native' | 'vxlan';

export interface Peer {
  readonly node: string;
  readonly podCidr: string;
  readonly internalIp: string;
}

export interface NodeRoutingInput {
  readonly mode: RoutingMode;
  /** The fabric-facing device. */
  readonly device: string;
  readonly vni: number;
  readonly port: number;
  /** This node's InternalIP (vxlan: the local VTEP); undefined until its Node has one. */
  readonly self: string | undefined;
  /** This node's podCIDR (the fabric program's anti-spoof check); undefined until its Node has one. */
  readonly selfPodCidr: string | undefined;
  readonly peers: readonly Peer[];
}

/** Absent nodeRouting: the round has nothing for this owner (it writes nothing). */
export interface NodeRoutesRoundInput {
  readonly nodeRouting?: NodeRoutingInput;
}

export interface RouteEntry {
  readonly dst: string;
  readonly gateway: string;
  readonly ifindex: number;
  readonly onlink: boolean;
}

export interface NeighEntry {
  readonly dst: string;
  readonly mac: string;
}

export interface LinkView {
  readonly ifindex: number;
  readonly mtu: number;
  readonly kind: string | undefined;
}

/** The kernel side, in this node's namespace. Every call may throw (an rtnetlink error). */
export interface NodeNetworkPort {
  /** Routes of ROUTE_PROTOCOL in table main. */
  listRoutes(): RouteEntry[];
  setRoute(r: RouteEntry): void;
  delRoute(dst: string): void;
  link(name: string): LinkView | undefined;
  createVxlan(r: { name: string; vni: number; port: number; local: string; device: string; mac: string; mtu: number }): void;
  /** family AF_INET: neighbours; AF_BRIDGE: FDB entries (dst = remote VTEP). */
  listNeigh(ifindex: number, family: number): NeighEntry[];
  setNeigh(ifindex: number, family: number, n: NeighEntry): void;
  delNeigh(ifindex: number, family: number, n: NeighEntry): void;
  /**
   * Loads (and pins) bpf/host.c for this podCIDR and attaches it on tc ingress of each device, replacing what is there.
   * nodeAddress: the source traffic from outside the node to a Service is masqueraded to (its InternalIP; absent: none known yet).
   */
  attachHostProgram(devices: readonly string[], podCidr: string, nodeAddress: string | undefined): void;
}

interface Desired {
  readonly routes: Map<string, RouteEntry>;
  /** vxlan only. */
  readonly neigh: Map<string, NeighEntry>;
  readonly fdb: Map<string, NeighEntry>;
  readonly vxlanIfindex: number | undefined;
}

/** The VTEP MAC of a node: locally administered, from its InternalIP. */
export function vtepMac(internalIp: string): string {
  return ['02', '5c', ...internalIp.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
}

/** The next hop standing for a peer on the vxlan device: its podCIDR's network address. */
export function vtepNextHop(podCidr: string): string {
  return podCidr.split('/')[0] ?? podCidr;
}

const MAP = 'node-routes';
const BPF_MAP = 'node-routes-bpf';

export class NodeRoutesOwner implements Reconciler<NodeRoutesRoundInput> {
  readonly name = MAP;
  private view: Map<string, RouteEntry> | undefined;
  private next: Map<string, RouteEntry> | undefined;
  private wanted = 0;
  /** What the fabric program was last attached for ("podCIDR devices"); undefined: not yet in this process. */
  private hostAttached: string | undefined;
  private readonly mirror: MapView<ReadonlyMap<string, NodeRoute>>;

  /** routes: sl_noderoute_v1, the programs' copy of the routes (podCIDR → route). */
  constructor(private readonly port: NodeNetworkPort, private readonly routes: MapStore<string, NodeRoute>) {
    this.mirror = new MapView(() => new Map(routes.entries()));
  }

  plan(input: NodeRoutesRoundInput): readonly WriteStep[] {
    const r = input.nodeRouting;
    if (r === undefined) return [];
    const fabric = this.port.link(r.device);
    if (fabric === undefined) throw new Error(`routing: no device ${r.device}`);
    const steps: WriteStep[] = [];
    let vxlan = r.mode === 'vxlan' ? this.port.link(VXLAN_IFNAME) : undefined;
    if (r.mode === 'vxlan' && vxlan === undefined) {
      if (r.self === undefined) throw new Error('routing: vxlan needs this node\'s InternalIP (its Node has none yet)');
      const self = r.self;
      // Created in plan, not in a step: the routes below need its ifindex. A device is not traffic policy.
      this.port.createVxlan({ name: VXLAN_IFNAME, vni: r.vni, port: r.port, local: self, device: r.device, mac: vtepMac(self), mtu: fabric.mtu - VXLAN_OVERHEAD });
      vxlan = this.port.link(VXLAN_IFNAME);
      if (vxlan === undefined) throw new Error(`routing: ${VXLAN_IFNAME} missing after its creation`);
    }
    const want = desired(r, fabric.ifindex, vxlan?.ifindex);
    this.next = want.routes;
    this.wanted = want.routes.size;
    const have = this.view ?? new Map(this.port.listRoutes().map((x) => [x.dst, x]));
    const upserts = [...want.routes.values()].filter((w) => !sameRoute(have.get(w.dst), w));
    const deletes = [...have.keys()].filter((dst) => !want.routes.has(dst));
    if (want.vxlanIfindex !== undefined) {
      const ifindex = want.vxlanIfindex;
      for (const [family, wanted] of [[AF_BRIDGE, want.fdb], [AF_INET, want.neigh]] as const) {
        const cur = this.port.listNeigh(ifindex, family);
        const curBy = new Map(cur.map((n) => [`${n.mac}>${n.dst}`, n]));
        const add = [...wanted.values()].filter((n) => !curBy.has(`${n.mac}>${n.dst}`));
        const drop = cur.filter((n) => n.mac !== '00:00:00:00:00:00' && !wanted.has(`${n.mac}>${n.dst}`));
        const kind = family === AF_BRIDGE ? 'fdb' : 'neigh';
        if (add.length > 0) steps.push(this.step(Phase.PUBLISH, `${kind}-upsert`, add, (n) => this.port.setNeigh(ifindex, family, n), (n) => `${n.mac} ${n.dst}`));
        if (drop.length > 0) steps.push(this.step(Phase.RETIRE, `${kind}-delete`, drop, (n) => this.port.delNeigh(ifindex, family, n), (n) => `${n.mac} ${n.dst}`));
      }
    }
    if (r.selfPodCidr !== undefined) {
      const devices = [r.device, ...(want.vxlanIfindex !== undefined ? [VXLAN_IFNAME] : [])];
      const key = `${r.selfPodCidr} ${devices.join(',')} ${r.self ?? '-'}`;
      const podCidr = r.selfPodCidr;
      const self = r.self;
      if (key !== this.hostAttached) {
        steps.push(this.step(Phase.PUBLISH, 'host-program', [key], () => {
          this.port.attachHostProgram(devices, podCidr, self);
          this.hostAttached = key;
        }, (k) => k));
      }
    }
    if (upserts.length > 0) steps.push(this.step(Phase.PUBLISH, 'route-upsert', upserts, (x) => this.port.setRoute(x), (x) => `${x.dst} via ${x.gateway}`));
    steps.push(...this.planMirror(want.routes, new Map([[fabric.ifindex, fabric.mtu], ...(vxlan !== undefined ? [[vxlan.ifindex, vxlan.mtu] as const] : [])])));
    if (deletes.length > 0) steps.push(this.step(Phase.RETIRE, 'route-delete', deletes, (d) => this.port.delRoute(d), (d) => d));
    return steps;
  }

  /** sl_noderoute_v1 steps: upserts after the kernel routes' (PUBLISH), deletes before theirs (RETIRE). */
  private planMirror(routes: ReadonlyMap<string, RouteEntry>, mtus: ReadonlyMap<number, number>): WriteStep[] {
    const from = this.mirror.current();
    const to = new Map<string, NodeRoute>([...routes].map(([dst, r]) => [dst, { ifindex: r.ifindex, nextHop: parseIpv4(r.gateway), mtu: mtus.get(r.ifindex) ?? 0 }]));
    this.mirror.ask(to);
    const upserts = [...to].filter(([dst, r]) => {
      const old = from.get(dst);
      return old === undefined || old.ifindex !== r.ifindex || old.nextHop !== r.nextHop || old.mtu !== r.mtu;
    });
    const deletes = [...from.keys()].filter((dst) => !to.has(dst));
    const steps: WriteStep[] = [];
    if (deletes.length > 0) {
      steps.push({
        phase: Phase.RETIRE, kind: 'bpf-route-delete', size: deletes.length,
        run: (_fc, fail) => deleteAll(this.routes, deletes, (k, e) => fail(stepFailure('bpf-route-delete', BPF_MAP, k, e))),
      });
    }
    if (upserts.length > 0) {
      steps.push({
        phase: Phase.PUBLISH, kind: 'bpf-route-upsert', size: upserts.length,
        run: (_fc, fail) => upsertAll(this.routes, upserts, (k, e) => fail(stepFailure('bpf-route-upsert', BPF_MAP, k, e))),
      });
    }
    return steps;
  }

  settle(complete: boolean): void {
    this.view = complete ? this.next : undefined;
    this.next = undefined;
    this.mirror.settle(complete);
  }

  invalidate(): void {
    this.view = undefined;
    this.mirror.invalidate();
  }

  entries(): Readonly<Record<string, number>> {
    return { 'node-routes': this.wanted };
  }

  private step<T>(phase: Phase, kind: string, items: readonly T[], write: (t: T) => void, key: (t: T) => string): WriteStep {
    return {
      phase, kind, size: items.length,
      run: (_fc, fail: (f: StepFailure) => void) => {
        let n = 0;
        for (const t of items) {
          try {
            write(t);
            n++;
          } catch (e) {
            fail(stepFailure(kind, MAP, key(t), e));
          }
        }
        return n;
      },
    };
  }
}

function desired(r: NodeRoutingInput, fabricIfindex: number, vxlanIfindex: number | undefined): Desired {
  const routes = new Map<string, RouteEntry>();
  const neigh = new Map<string, NeighEntry>();
  const fdb = new Map<string, NeighEntry>();
  for (const p of r.peers) {
    if (r.mode === 'native' || vxlanIfindex === undefined) {
      routes.set(p.podCidr, { dst: p.podCidr, gateway: p.internalIp, ifindex: fabricIfindex, onlink: false });
      continue;
    }
    const mac = vtepMac(p.internalIp);
    const hop = vtepNextHop(p.podCidr);
    routes.set(p.podCidr, { dst: p.podCidr, gateway: hop, ifindex: vxlanIfindex, onlink: true });
    neigh.set(`${mac}>${hop}`, { dst: hop, mac });
    fdb.set(`${mac}>${p.internalIp}`, { dst: p.internalIp, mac });
  }
  return { routes, neigh, fdb, vxlanIfindex: r.mode === 'vxlan' ? vxlanIfindex : undefined };
}

function sameRoute(a: RouteEntry | undefined, b: RouteEntry): boolean {
  return a !== undefined && a.gateway === b.gateway && a.ifindex === b.ifindex && a.onlink === b.onlink;
}
