/**
 * CHECK: is the attachment still as ADD left it? prevResult says what to
 * expect; every difference is collected and reported at once (code 103), so
 * one CHECK tells the whole story:
 *
 *   host veth     exists, is ours (alias), veth, up, MTU
 *   pod end       netns exists, interface exists, up, MAC, MTU, every address
 *                 of prevResult, the default route via the gateway
 *   programs      both tc hooks hold a program, and sl_lxc_v1 maps the veth to
 *                 the agent's endpoint id and the address (datapath "bpf")
 *   agent         knows the endpoint, with this address and host ifindex
 *   IPAM          the address is allocated to this attachment
 *
 * Routes other plugins added or changed are not ours to judge (the spec lets
 * a later plugin modify them); only the ones we listed must exist.
 */
import { existsSync } from 'node:fs';
import type { CniAgent } from './agent.js';
import type { NetConf } from './config.js';
import { inspectDatapath } from './datapath.js';
import type { CniEnv } from './env.js';
import { CniCode, CniError } from './errors.js';
import { IpamStore, ownerOf } from './ipam.js';
import { attachmentNames, GATEWAY_V4, vethAlias } from './names.js';
import { hostLink, inspectPod } from './wiring.js';

export async function cmdCheck(env: CniEnv, conf: NetConf, agent: CniAgent): Promise<void> {
  const prev = conf.prevResult;
  if (prev === undefined) throw new CniError(CniCode.INVALID_CONFIG, 'invalid network config: CHECK needs prevResult (the result of the ADD being checked)');
  const attachment = { containerId: env.containerId, ifname: env.ifname };
  const names = attachmentNames(attachment);
  const problems: string[] = [];

  const podIndex = prev.interfaces.findIndex((i) => i.name === env.ifname && i.sandbox !== undefined && i.sandbox !== '');
  const podIface = prev.interfaces[podIndex];
  if (podIface === undefined) problems.push(`prevResult lists no container interface ${env.ifname}`);
  const addresses = prev.ips.filter((ip) => ip.interface === podIndex).map((ip) => ip.address);

  const host = await hostLink(names.hostIfname);
  if (host === undefined) problems.push(`host veth ${names.hostIfname} is missing`);
  else {
    if (host.alias !== vethAlias(attachment)) problems.push(`host interface ${names.hostIfname} is not this attachment's veth (alias ${JSON.stringify(host.alias ?? '')})`);
    if (host.kind !== 'veth') problems.push(`host interface ${names.hostIfname} is a ${host.kind ?? 'unknown'} link, not a veth`);
    if (!host.up) problems.push(`host veth ${names.hostIfname} is down`);
    if (host.mtu !== conf.mtu) problems.push(`host veth ${names.hostIfname} has MTU ${host.mtu}, want ${conf.mtu}`);
  }

  if (!existsSync(env.netns)) problems.push(`netns ${env.netns} does not exist`);
  else {
    const pod = await inspectPod(env.netns, env.ifname);
    if (!pod.exists) problems.push(`interface ${env.ifname} is missing in ${env.netns}`);
    else {
      if (pod.kind !== 'veth') problems.push(`${env.ifname} is a ${pod.kind ?? 'unknown'} link, not a veth`);
      if (pod.up !== true) problems.push(`${env.ifname} is down`);
      if (podIface?.mac !== undefined && pod.mac !== podIface.mac.toLowerCase()) problems.push(`${env.ifname} has MAC ${pod.mac}, want ${podIface.mac}`);
      if (pod.mtu !== conf.mtu) problems.push(`${env.ifname} has MTU ${pod.mtu}, want ${conf.mtu}`);
      for (const a of addresses) if (!pod.addresses.includes(a)) problems.push(`${env.ifname} lacks address ${a} (has ${pod.addresses.join(', ') || 'none'})`);
      const wantsDefault = prev.routes.some((r) => r.gw === GATEWAY_V4 && r.dst === '0.0.0.0/0');
      if (wantsDefault && !pod.routes.some((r) => r.dst === 'default' && r.gateway === GATEWAY_V4)) {
        problems.push(`${env.netns} has no default route via ${GATEWAY_V4} dev ${env.ifname}`);
      }
    }
  }

  const v4 = addresses.map((a) => a.split('/')[0] ?? a).find((ip) => !ip.includes(':'));
  const endpoint = await agent.get(env.containerId, env.ifname);

  if (conf.datapath === 'bpf' && host !== undefined) {
    const dp = await inspectDatapath(conf.pinRoot, host.ifindex);
    if (dp.fromContainer === undefined) problems.push(`no program on tc ingress of ${names.hostIfname} (traffic from the pod is not enforced)`);
    if (dp.toContainer === undefined) problems.push(`no program on tc egress of ${names.hostIfname} (traffic to the pod is not enforced)`);
    if (dp.entry === undefined) problems.push(`no sl_lxc_v1 entry for ${names.hostIfname} (ifindex ${host.ifindex}): its programs drop every packet`);
    else {
      if (endpoint !== undefined && dp.entry.endpointId !== endpoint.endpointId) problems.push(`sl_lxc_v1 maps ${names.hostIfname} to endpoint ${dp.entry.endpointId}, the agent's is ${endpoint.endpointId}`);
      if (v4 !== undefined && dp.entry.ipv4 !== v4) problems.push(`sl_lxc_v1 gives ${names.hostIfname} address ${dp.entry.ipv4}, want ${v4}`);
    }
  }

  if (endpoint === undefined) problems.push(`sluice-agent has no endpoint ${env.containerId}/${env.ifname}`);
  else {
    if (v4 !== undefined && endpoint.ip !== v4) problems.push(`sluice-agent has the endpoint at ${endpoint.ip}, want ${v4}`);
    if (host !== undefined && endpoint.hostIfindex !== host.ifindex) problems.push(`sluice-agent has host ifindex ${endpoint.hostIfindex}, the veth is ${host.ifindex}`);
  }

  const allocated = new Map(IpamStore.forNetwork(conf.ipam.dataDir, conf.name).list().map((x) => [x.ip, x.owner]));
  for (const a of addresses) {
    const ip = a.split('/')[0] ?? a;
    const owner = allocated.get(ip);
    if (owner !== ownerOf(attachment)) problems.push(`address ${ip} is ${owner === undefined ? 'not allocated' : `allocated to ${owner}`} in IPAM`);
  }

  if (problems.length > 0) {
    throw new CniError(CniCode.CHECK_FAILED, `CHECK failed for ${env.containerId}/${env.ifname}: ${problems.join('; ')}`);
  }
}
