/** kube-proxy on lab nodes, the pure parts (src/lab/cluster/kube-proxy.ts, nodes.ts clusterCidr). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kubeProxyArgs, kubeProxyMode, parseServiceProxy, SYNC_DONE } from '../../src/lab/cluster/kube-proxy.js';
import { clusterCidr, planNodes } from '../../src/lab/cluster/nodes.js';
import { kubeProxyPath } from '../../src/lab/controlplane/binaries.js';
import { LabError } from '../../src/lab/errors.js';
import { resolveSpec } from '../../src/lab/spec.js';

const paths = { bpffs: '/sys/fs/bpf', stateDir: '/tmp' };

test('the command line: mode, the Node and its InternalIP, the cluster CIDR, conntrack limits left alone, the kubeconfig in two words', () => {
  const args = kubeProxyArgs({
    binary: '/k/kube-proxy', mode: 'nftables', kubeconfig: '/run/lab/x.d/kubeconfig', nodeName: 'sluice-x-2', nodeIp: '172.30.0.12',
    clusterCidr: '10.9.0.0/20', netns: '/var/run/netns/sluice-x-node2', logFile: '/run/lab/x.d/node2/kube-proxy.log',
  });
  assert.deepEqual(args.slice(0, 2), ['--kubeconfig', '/run/lab/x.d/kubeconfig'], 'lab down finds the process by an argument starting with the lab dir');
  for (const flag of ['--proxy-mode=nftables', '--hostname-override=sluice-x-2', '--bind-address=172.30.0.12', '--cluster-cidr=10.9.0.0/20',
    '--conntrack-max-per-core=0', '--conntrack-tcp-timeout-established=0', '--conntrack-tcp-timeout-close-wait=0', '--v=2']) {
    assert.ok(args.includes(flag), `${flag} in ${args.join(' ')}`);
  }
  assert.match(SYNC_DONE, /SyncProxyRules complete.*IPv4/);
});

test('proxy choices: sluice has no kube-proxy mode; unknown ones are refused', () => {
  assert.equal(kubeProxyMode(parseServiceProxy('sluice')), undefined);
  assert.equal(kubeProxyMode(parseServiceProxy('kube-proxy-iptables')), 'iptables');
  assert.equal(kubeProxyMode(parseServiceProxy('kube-proxy-nftables')), 'nftables');
  assert.throws(() => parseServiceProxy('ipvs'), (e: unknown) => e instanceof LabError && e.code === 'invalid-spec' && /sluice, kube-proxy-iptables, kube-proxy-nftables/.test(e.message));
});

test('the cluster CIDR holds every podCIDR the lab can hand out (16 nodes)', () => {
  for (const cidr of ['10.9.0.0/24', '10.1.5.0/24', '10.14.0.0/16']) {
    const plan = resolveSpec({ name: 'kpunit', pods: ['a'], cidr }, paths);
    const got = clusterCidr(plan);
    const [addr, len] = got.split('/');
    const toInt = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
    const lo = toInt(addr ?? '');
    const hi = lo + 2 ** (32 - Number(len)) - 1;
    for (const n of planNodes(plan, paths, { count: 16 })) {
      const [na, nl] = n.podCidr.split('/');
      const first = toInt(na ?? '');
      const last = first + 2 ** (32 - Number(nl)) - 1;
      assert.ok(first >= lo && last <= hi, `${n.podCidr} inside ${got}`);
    }
  }
  assert.equal(clusterCidr(resolveSpec({ name: 'kpunit', pods: ['a'], cidr: '10.9.0.0/24' }, paths)), '10.9.0.0/20', 'the smallest such prefix');
});

test('kube-proxy sits beside the control plane of the same version', () => {
  assert.equal(kubeProxyPath({ kubernetes: 'v1.34.4', etcd: 'v3.5.35' }, '/c'), '/c/k8s-bin/kubernetes-v1.34.4/kube-proxy');
});
