/**
 * The node-routes owner's port (src/reconcile/node-routes.ts) over the
 * native addon's rtnetlink (native/src/rtnl.cc), in the calling process's
 * own network namespace: routes of the owner's protocol, the vxlan device,
 * its FDB and neighbour entries. No `ip` process runs.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { addon } from './addon.js';
import { attachHost, loadHost } from './host.js';
import { ROUTE_PROTOCOL, type LinkView, type NeighEntry, type NodeNetworkPort, type RouteEntry } from '../reconcile/node-routes.js';

/** The fabric programs' pins, next to the node's maps (and the lxc programs' directory). */
export const HOST_PIN = 'host_from_fabric';
export const HOST_EGRESS_PIN = 'host_to_fabric';

/** pinRoot: the node's pin dir, whose maps the fabric program shares. */
export function rtnlNodeNetwork(pinRoot: string): NodeNetworkPort {
  const a = addon();
  return {
    listRoutes: (): RouteEntry[] =>
      a.rtnlRouteList(ROUTE_PROTOCOL).map((r) => ({ dst: r.dst, gateway: r.gateway ?? '', ifindex: r.ifindex, onlink: r.onlink })),
    setRoute: (r) => a.rtnlRouteSet({ dst: r.dst, gateway: r.gateway, ifindex: r.ifindex, onlink: r.onlink, protocol: ROUTE_PROTOCOL }),
    delRoute: (dst) => {
      a.rtnlRouteDel({ dst, protocol: ROUTE_PROTOCOL });
    },
    link: (name): LinkView | undefined => {
      const l = a.rtnlLinkGet(name);
      return l === undefined ? undefined : { ifindex: l.ifindex, mtu: l.mtu ?? 0, kind: l.kind };
    },
    createVxlan: (r) => a.rtnlVxlanCreate(r),
    listNeigh: (ifindex, family): NeighEntry[] =>
      a.rtnlNeighList(ifindex, family).flatMap((n) => (n.dst !== undefined && n.mac !== undefined ? [{ dst: n.dst, mac: n.mac }] : [])),
    setNeigh: (ifindex, family, n) => a.rtnlNeighSet({ ifindex, family, dst: n.dst, mac: n.mac }),
    delNeigh: (ifindex, family, n) => {
      a.rtnlNeighDel({ ifindex, family, dst: n.dst, mac: n.mac });
    },
    attachHostProgram: (devices, podCidr, nodeAddress) => {
      const prog = loadHost({ pinRoot, podCidr, ...(nodeAddress !== undefined ? { nodeAddress } : {}) });
      try {
        for (const d of devices) attachHost(prog, d);
        for (const [name, fd] of [[HOST_PIN, prog.fromFabric.fd], [HOST_EGRESS_PIN, prog.toFabric.fd]] as const) {
          const pin = join(pinRoot, name);
          rmSync(pin, { force: true });
          a.objPin(fd, pin);
        }
      } finally {
        prog.close();
      }
    },
  };
}
