/**
 * NetworkPolicy on a cluster lab, end to end with real packets: kubectl →
 * real kube-apiserver → real sluice-agent → pinned maps → the programs the
 * real sluice-cni attached. Pods: default/a (app=client), default/b
 * (app=web; named ports http 5201/TCP, echo 5301/UDP), other/c (app=client,
 * in another namespace). b runs a UDP echo server; TCP probes count a
 * refused connect as "through" (the SYN reached b).
 */
import { after, before, test } from 'node:test';
import { udpServe } from './helpers.js';
import { ALLOW_HTTP, CLIENT_POD, DENY_ALL_INGRESS, eventually, expectNow, startCluster, type TestCluster } from './cluster-helpers.js';

const manifests = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } },
  CLIENT_POD,
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'b', labels: { app: 'web' } },
    spec: { containers: [{ name: 'srv', ports: [{ name: 'http', containerPort: 5201 }, { name: 'echo', containerPort: 5301, protocol: 'UDP' }] }] },
  },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'c', namespace: 'other', labels: { app: 'client' } }, spec: { containers: [{ name: 'shell' }] } },
];

const allowTeamBlue = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-allow-team-blue, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: blue}}}]
    ports: [{port: http}]
`;

let c: TestCluster;
let echo: { kill(): void } | undefined;

before(async () => {
  c = await startCluster(['a', 'b', 'c'], manifests);
  echo = await udpServe(c.lab.pod('b').netns, c.lab.pod('b').ipv4, 5301);
});

after(async () => {
  echo?.kill();
  await c?.close();
});

const kubectl = (args: string[], input?: string): Promise<string> => c.lab.kubectl(args, input);

test('no policy: TCP and UDP between the pods', async () => {
  await expectNow(c, [
    ['a', 'b', 'tcp', 5201, 'open'],
    ['a', 'b', 'udp', 5301, 'open'],
    ['c', 'b', 'tcp', 5202, 'open'],
    ['b', 'a', 'tcp', 80, 'open'],
  ]);
});

test('kubectl apply default-deny: TCP and UDP to the namespace stop', async () => {
  await kubectl(['apply', '-f', '-'], DENY_ALL_INGRESS);
  await eventually(c, 'a', 'b', 'tcp', 5201, 'closed');
  await expectNow(c, [
    ['a', 'b', 'udp', 5301, 'closed'],
    ['c', 'b', 'tcp', 5201, 'closed'],
    ['b', 'a', 'tcp', 80, 'closed'],
    ['a', 'c', 'tcp', 80, 'open'], // other/c is not selected
  ]);
});

test('kubectl apply an allow on the named port http: exactly that port opens', async () => {
  await kubectl(['apply', '-f', '-'], ALLOW_HTTP);
  await eventually(c, 'a', 'b', 'tcp', 5201, 'open');
  await expectNow(c, [
    ['a', 'b', 'tcp', 5202, 'closed'],
    ['a', 'b', 'udp', 5301, 'closed'],
    ['a', 'b', 'udp', 5201, 'closed'],
    ['c', 'b', 'tcp', 5201, 'closed'], // a podSelector alone matches its own namespace only
    ['b', 'a', 'tcp', 5201, 'closed'],
  ]);
});

test('a pod label change moves the pod out of and back into the allow', async () => {
  await kubectl(['label', 'pod', 'a', 'app=stranger', '--overwrite']);
  await eventually(c, 'a', 'b', 'tcp', 5201, 'closed');
  await kubectl(['label', 'pod', 'a', 'app=client', '--overwrite']);
  await eventually(c, 'a', 'b', 'tcp', 5201, 'open');
});

test('a namespace label change moves its pod into and out of an allow', async () => {
  await kubectl(['apply', '-f', '-'], allowTeamBlue);
  await expectNow(c, [['c', 'b', 'tcp', 5201, 'closed']]);
  await kubectl(['label', 'namespace', 'other', 'team=blue']);
  await eventually(c, 'c', 'b', 'tcp', 5201, 'open');
  await expectNow(c, [['c', 'b', 'tcp', 5202, 'closed']]);
  await kubectl(['label', 'namespace', 'other', 'team-']);
  await eventually(c, 'c', 'b', 'tcp', 5201, 'closed');
});

test('kubectl delete restores', async () => {
  await kubectl(['delete', 'networkpolicy', 'default-deny', 'web-allow-clients', 'web-allow-team-blue']);
  await eventually(c, 'a', 'b', 'tcp', 5202, 'open');
  await expectNow(c, [
    ['a', 'b', 'udp', 5301, 'open'],
    ['c', 'b', 'tcp', 5201, 'open'],
    ['b', 'a', 'tcp', 80, 'open'],
  ]);
});
