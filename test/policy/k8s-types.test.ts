/**
 * The engine's Kubernetes types accept @kubernetes/client-node objects. The
 * classes below mirror the generated client-node models (src/gen/models/V1*.ts,
 * the fields the engine reads, declared the same way): the type check proves
 * assignability under exactOptionalPropertyTypes, and building a cluster from
 * instances proves that unset fields (own properties holding undefined, as
 * ES2022 class fields are) read as absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCluster } from '../../src/policy/cluster.js';
import type { Namespace, NetworkPolicy, Pod } from '../../src/policy/k8s-types.js';
import { evaluate } from '../../src/policy/model.js';

type IntOrString = string | number;

class V1ObjectMeta {
  'annotations'?: { [key: string]: string };
  'creationTimestamp'?: Date;
  'labels'?: { [key: string]: string };
  'name'?: string;
  'namespace'?: string;
  'resourceVersion'?: string;
  'uid'?: string;
}
class V1Namespace {
  'apiVersion'?: string;
  'kind'?: string;
  'metadata'?: V1ObjectMeta;
}
class V1ContainerPort {
  'containerPort': number = 0;
  'hostPort'?: number;
  'name'?: string;
  'protocol'?: string;
}
class V1Container {
  'image'?: string;
  'name': string = '';
  'ports'?: Array<V1ContainerPort>;
}
class V1PodSpec {
  'containers': Array<V1Container> = [];
  'hostNetwork'?: boolean;
  'nodeName'?: string;
}
class V1PodIP {
  'ip': string = '';
}
class V1PodStatus {
  'phase'?: string;
  'podIP'?: string;
  'podIPs'?: Array<V1PodIP>;
}
class V1Pod {
  'apiVersion'?: string;
  'kind'?: string;
  'metadata'?: V1ObjectMeta;
  'spec'?: V1PodSpec;
  'status'?: V1PodStatus;
}
class V1LabelSelectorRequirement {
  'key': string = '';
  'operator': string = '';
  'values'?: Array<string>;
}
class V1LabelSelector {
  'matchExpressions'?: Array<V1LabelSelectorRequirement>;
  'matchLabels'?: { [key: string]: string };
}
class V1IPBlock {
  'cidr': string = '';
  'except'?: Array<string>;
}
class V1NetworkPolicyPeer {
  'ipBlock'?: V1IPBlock;
  'namespaceSelector'?: V1LabelSelector;
  'podSelector'?: V1LabelSelector;
}
class V1NetworkPolicyPort {
  'endPort'?: number;
  'port'?: IntOrString;
  'protocol'?: string;
}
class V1NetworkPolicyIngressRule {
  'from'?: Array<V1NetworkPolicyPeer>;
  'ports'?: Array<V1NetworkPolicyPort>;
}
class V1NetworkPolicyEgressRule {
  'ports'?: Array<V1NetworkPolicyPort>;
  'to'?: Array<V1NetworkPolicyPeer>;
}
class V1NetworkPolicySpec {
  'egress'?: Array<V1NetworkPolicyEgressRule>;
  'ingress'?: Array<V1NetworkPolicyIngressRule>;
  'podSelector': V1LabelSelector = new V1LabelSelector();
  'policyTypes'?: Array<string>;
}
class V1NetworkPolicy {
  'apiVersion'?: string;
  'kind'?: string;
  'metadata'?: V1ObjectMeta;
  'spec'?: V1NetworkPolicySpec;
}

function meta(namespace: string | undefined, name: string, labels: Record<string, string>): V1ObjectMeta {
  const m = new V1ObjectMeta();
  if (namespace !== undefined) m.namespace = namespace;
  m.name = name;
  m.labels = labels;
  m.uid = `uid-${name}`;
  m.creationTimestamp = new Date(0);
  return m;
}

function clientNodePod(namespace: string, name: string, ip: string): V1Pod {
  const port = new V1ContainerPort();
  port.containerPort = 8080;
  port.name = 'http';
  const container = new V1Container();
  container.name = 'app';
  container.ports = [port];
  const pod = new V1Pod();
  pod.metadata = meta(namespace, name, { app: name });
  pod.spec = new V1PodSpec();
  pod.spec.containers = [container];
  pod.status = new V1PodStatus();
  pod.status.podIP = ip;
  return pod;
}

test('client-node objects build a cluster the evaluator answers for', () => {
  const ns = new V1Namespace();
  ns.metadata = meta(undefined, 'shop', { team: 'web' });

  const peer = new V1NetworkPolicyPeer();
  peer.podSelector = new V1LabelSelector();
  peer.podSelector.matchLabels = { app: 'front' };
  const port = new V1NetworkPolicyPort();
  port.port = 'http';
  const rule = new V1NetworkPolicyIngressRule();
  rule.from = [peer];
  rule.ports = [port];
  const policy = new V1NetworkPolicy();
  policy.metadata = meta('shop', 'api-from-front', {});
  policy.spec = new V1NetworkPolicySpec();
  policy.spec.podSelector.matchLabels = { app: 'api' };
  policy.spec.ingress = [rule];

  const namespaces: Namespace[] = [ns];
  const pods: Pod[] = [clientNodePod('shop', 'front', '10.1.0.1'), clientNodePod('shop', 'api', '10.1.0.2'), clientNodePod('shop', 'other', '10.1.0.3')];
  const networkPolicies: NetworkPolicy[] = [policy];
  const built = buildCluster({ namespaces, pods, networkPolicies });
  assert.ok(built.ok, built.ok ? '' : JSON.stringify(built.errors));
  assert.deepEqual(built.warnings, []);
  const c = built.value;
  assert.equal(evaluate(c, 'shop/front', 'shop/api', 8080, 'TCP').allowed, true);
  assert.equal(evaluate(c, 'shop/other', 'shop/api', 8080, 'TCP').allowed, false);
  assert.equal(evaluate(c, 'shop/front', 'shop/api', 80, 'TCP').allowed, false);
  assert.equal(evaluate(c, 'shop/api', 'shop/other', 80, 'TCP').allowed, true);
});
