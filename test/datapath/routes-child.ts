/**
 * Run by routes.test.ts inside a namespace of its own (`ip netns exec`): one
 * step of rtnlNodeNetwork, whose rtnetlink calls act on the caller's
 * namespace. argv: <pinRoot> <step> [json]; prints the step's result as JSON.
 */
import { rtnlNodeNetwork } from '../../src/datapath/routes.js';
import type { NeighEntry, NodeNetworkPort, RouteEntry } from '../../src/reconcile/node-routes.js';

/** The step's argument, as the test wrote it. */
interface Arg {
  readonly dst: string;
  readonly name: string;
  readonly ifindex: number;
  readonly family: number;
  readonly entry: NeighEntry;
}

const [pinRoot = '', step = '', arg = 'null'] = process.argv.slice(2);
const net = rtnlNodeNetwork(pinRoot);
const a = JSON.parse(arg) as Arg;
const out: unknown = (() => {
  switch (step) {
    case 'list-routes': return net.listRoutes();
    case 'set-route': return net.setRoute(JSON.parse(arg) as RouteEntry);
    case 'del-route': return net.delRoute(a['dst']);
    case 'link': return net.link(a['name']) ?? null;
    case 'create-vxlan': return net.createVxlan(JSON.parse(arg) as Parameters<NodeNetworkPort['createVxlan']>[0]);
    case 'list-neigh': return net.listNeigh(a['ifindex'], a['family']);
    case 'set-neigh': return net.setNeigh(a['ifindex'], a['family'], a['entry']);
    case 'del-neigh': return net.delNeigh(a['ifindex'], a['family'], a['entry']);
    default: throw new Error(`unknown step ${step}`);
  }
})();
process.stdout.write(`${JSON.stringify(out ?? null)}\n`);
