/**
 * sl_lb_sock_v1: LRU hash, (socket cookie, backend address, port, protocol)
 * → the frontend the node's socket asked for (bpf/sock.c, the socket load
 * balancer). The socket programs write it when they give a node socket a
 * backend; the agent reads it to find the connected UDP sockets whose
 * backend is gone (sock-lb.ts HostUdpSockets), and deletes their entries.
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { IP_PROTOCOL } from '../../policy/protocols.js';
import { lbSockEntryCodec, lbSockKeyCodec, type LbSockEntry, type LbSockKey } from '../generated/abi.js';
import { checkLayout, type MapLayout } from './layout.js';

/** No maxEntries: the socket object's compiled size, or what the pin holds. */
export const LB_SOCK_LAYOUT: MapLayout = {
  name: 'sl_lb_sock_v1',
  type: BpfMapType.LRU_HASH,
  keySize: lbSockKeyCodec.size,
  valueSize: lbSockEntryCodec.size,
};

export type LbSockMap = TypedMap<LbSockKey, LbSockEntry>;

/** Types raw after checking it is the host sockets' map of this layout. */
export function openLbSock(raw: RawMap): LbSockMap {
  checkLayout(raw.info, LB_SOCK_LAYOUT);
  return typedMap(raw, lbSockKeyCodec, lbSockEntryCodec);
}

/**
 * A UDP backend that left a Service (its backend entry was deleted): its
 * address and port, and the Service's frontends, as `address:port` of
 * natural (host-order) numbers. A socket the socket load balancer connected
 * to this backend through one of these frontends has lost its server.
 */
export interface GoneUdpBackend {
  readonly addr: number;
  readonly port: number;
  readonly frontends: ReadonlySet<string>;
}

export const frontendRef = (addr: number, port: number): string => `${addr}:${port}`;

/**
 * The entries of UDP sockets given one of these backends through one of
 * its Service's frontends. A backend still serving another Service keeps
 * that Service's sockets (their frontend is not this one's).
 */
export function udpSocketsOf(map: LbSockMap, gone: readonly GoneUdpBackend[]): LbSockKey[] {
  if (gone.length === 0) return [];
  const byBackend = new Map<string, Set<string>>();
  for (const g of gone) {
    const key = frontendRef(g.addr, g.port);
    const set = byBackend.get(key) ?? new Set<string>();
    for (const f of g.frontends) set.add(f);
    byBackend.set(key, set);
  }
  const out: LbSockKey[] = [];
  for (const [k, e] of map.entries()) {
    if (k.protocol !== IP_PROTOCOL.UDP) continue;
    if (byBackend.get(frontendRef(k.backendAddr, k.backendPort))?.has(frontendRef(e.frontendAddr, e.frontendPort))) out.push(k);
  }
  return out;
}
