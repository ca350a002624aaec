/**
 * ADD: address, veth, agent, programs, then up — in that order, so the pod's
 * interface carries traffic only once the endpoint is registered and its
 * programs are attached (and those drop everything until the agent's entry
 * is in the maps).
 *
 *   1. allocate (idempotent per attachment)   ipam.ts
 *   2. veth pair, pod end down; host end up     wiring.ts (rtnetlink)
 *      with routes (no carrier yet)
 *   3. register with the agent → endpoint id   (waits until its policy is in the maps)
 *   4. sl_lxc_v1 entry, attach the node-shared   datapath.ts (datapath "bpf"; opened, or
 *      tc programs                              loaded by the first ADD, during step 3)
 *   5. pod end: addresses, up, routes — carrier, so traffic, only now
 *
 * A failure undoes what this ADD did (veth, registration, then the address);
 * a crash leaves only state named after the attachment, which the runtime's
 * DEL, a rerun ADD or GC finds and removes.
 */
import { statSync } from 'node:fs';
import { AgentUnreachable, type CniAgent } from './agent.js';
import type { NetConf } from './config.js';
import { prepareDatapath, releaseInterface, type PreparedDatapath } from './datapath.js';
import { requirePod, type CniEnv } from './env.js';
import { CniCode, CniError } from './errors.js';
import { crashPoint } from './hooks.js';
import { IpamStore } from './ipam.js';
import { attachmentNames, GATEWAY_V4 } from './names.js';
import { resolvePodCidrs } from './pod-cidr.js';
import { mark } from './timing.js';
import type { CniInterface, CniIpConfig, CniResult, CniRoute } from './result.js';
import { configurePod, createVeth, deleteVeth, type VethPlan } from './wiring.js';

export async function cmdAdd(env: CniEnv, conf: NetConf, agent: CniAgent): Promise<CniResult> {
  const pod = requirePod(env);
  checkNetns(env.netns);
  const attachment = { containerId: env.containerId, ifname: env.ifname };
  const names = attachmentNames(attachment);
  const cidrs = await resolvePodCidrs(conf, agent);
  const store = IpamStore.forNetwork(conf.ipam.dataDir, conf.name);
  mark('cidr');
  const allocs = store.allocate(attachment, cidrs);
  mark('ipam');
  crashPoint('after-ipam', env.crashAt);
  const v4 = allocs.find((a) => a.family === 4);
  if (v4 === undefined) throw new CniError(CniCode.NO_POD_CIDR, 'no IPv4 pod CIDR to allocate from (the datapath needs an IPv4 address per pod)');

  const plan: VethPlan = {
    ...names,
    podMac: conf.mac ?? names.podMac,
    attachment,
    netns: env.netns,
    podIfname: env.ifname,
    mtu: conf.mtu,
    addresses: allocs.map((a) => `${a.ip}/${a.family === 4 ? 32 : 128}`),
  };
  let registered = false;
  let hostIfindex: number | undefined; // set once its sl_lxc_v1 entry may exist
  let prepared: PreparedDatapath | undefined;
  try {
    const host = await createVeth(plan);
    if (conf.datapath === 'bpf' && host.replacedIfindex !== undefined) await releaseInterface(conf.pinRoot, host.replacedIfindex);
    mark('veth');
    crashPoint('after-veth', env.crashAt);
    registered = true; // from here the agent may hold it, even if the request fails
    const registering = agent.register({
      containerId: env.containerId, ifname: env.ifname, netns: env.netns,
      podNamespace: pod.namespace, podName: pod.name, ip: v4.ip,
      hostIfname: names.hostIfname, hostIfindex: host.ifindex,
    });
    // The agent answers after its sync: open the node's programs meanwhile (both settle before either error counts).
    const [reg, prep] = await Promise.allSettled([
      registering,
      conf.datapath === 'bpf' ? requestSent().then(() => prepareDatapath(conf.pinRoot, conf.bpfObject)) : undefined,
    ]);
    if (prep.status === 'fulfilled') prepared = prep.value;
    if (reg.status === 'rejected') throw reg.reason;
    if (prep.status === 'rejected') throw prep.reason;
    const endpoint = reg.value;
    mark('agent');
    crashPoint('after-register', env.crashAt);
    if (prepared !== undefined) {
      hostIfindex = host.ifindex;
      prepared.attach({ hostIfname: names.hostIfname, hostIfindex, endpointId: endpoint.endpointId, ipv4: v4.ip });
    }
    mark('programs');
    crashPoint('after-attach', env.crashAt);
    await configurePod(plan);
    mark('pod');
    crashPoint('after-pod', env.crashAt);
  } catch (e) {
    if (e instanceof AgentUnreachable && e.neverSent) registered = false;
    await undo(plan, registered, agent, store, conf.pinRoot, hostIfindex);
    throw e;
  } finally {
    prepared?.close();
  }
  return withPrevious(conf.prevResult, ours(plan, conf));
}

/**
 * Resolves once the event loop has turned: a request started just before
 * has connected and written itself (the unix-socket connect completes in the
 * loop's pending phase), so synchronous work after this no longer delays it.
 */
function requestSent(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function checkNetns(path: string): void {
  try {
    statSync(path);
  } catch (e) {
    throw new CniError(CniCode.INVALID_ENV, `CNI_NETNS=${path}: ${(e as Error).message}; the runtime must create the network namespace before ADD`);
  }
}

/** Best effort: leaves the address allocated when the agent may still hold the endpoint (DEL retries). */
async function undo(plan: VethPlan, registered: boolean, agent: CniAgent, store: IpamStore, pinRoot: string, hostIfindex: number | undefined): Promise<void> {
  try {
    await deleteVeth(plan.hostIfname, plan.attachment);
    if (hostIfindex !== undefined) await releaseInterface(pinRoot, hostIfindex);
  } catch {
    // DEL or GC will retry; the original error is what the runtime must see.
  }
  if (registered) {
    try {
      await agent.unregister(plan.attachment.containerId, plan.attachment.ifname);
    } catch {
      return; // keep the address: releasing it while the agent holds the endpoint would let another pod take it
    }
  }
  try {
    store.release(plan.attachment);
  } catch {
    // DEL or GC will release it.
  }
}

function ours(plan: VethPlan, conf: NetConf): CniResult {
  const interfaces: CniInterface[] = [
    { name: plan.hostIfname, mac: plan.hostMac, mtu: plan.mtu },
    { name: plan.podIfname, mac: plan.podMac, mtu: plan.mtu, sandbox: plan.netns },
  ];
  const ips: CniIpConfig[] = plan.addresses.map((address) => ({ address, gateway: GATEWAY_V4, interface: 1 }));
  const routes: CniRoute[] = [{ dst: '0.0.0.0/0', gw: GATEWAY_V4 }];
  return { interfaces, ips, routes, dns: conf.dns };
}

/**
 * After another plugin in the chain: keep its interfaces, addresses and
 * routes, append ours (our interface indexes shifted past its), keep its DNS
 * unless we have some.
 */
export function withPrevious(prev: CniResult | undefined, mine: CniResult): CniResult {
  if (prev === undefined) return mine;
  const shift = prev.interfaces.length;
  return {
    interfaces: [...prev.interfaces, ...mine.interfaces],
    ips: [...prev.ips, ...mine.ips.map((ip) => (ip.interface === undefined ? ip : { ...ip, interface: ip.interface + shift }))],
    routes: [...prev.routes, ...mine.routes],
    dns: Object.keys(mine.dns).length > 0 ? mine.dns : prev.dns,
  };
}
