// helm/sluice: the chart lints clean, renders objects a real API server accepts
// (server-side dry run against the lab's control plane), grants the agent
// exactly what its informers call, and writes a config the agent accepts.
// helm comes from scripts/build-k8s-tools (scripts/setup builds it); when it is
// missing this file FAILS with that instruction.
//
// Proves: `helm lint --strict` has no warning, with default and with set values;
// every rendered object passes `kubectl apply --dry-run=server`; the
// ClusterRole's (group, resource, verb) triples equal the list and watch calls
// the agent's six informers make through their transport (recorded, not
// copied); with only the chart's RBAC, the real sluice-agent lists and watches
// everything and becomes ready, and cannot write; the ConfigMap is a valid
// agent config carrying the values set.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/agent/config.js';
import { createInformers, informerList } from '../../src/agent/k8s/informers.js';
import type { KubeTransport, ListPage, Query, WatchCallbacks, WatchHandle } from '../../src/agent/k8s/transport.js';
import { findBinaries } from '../../src/lab/controlplane/binaries.js';
import { ControlPlane } from '../../src/lab/controlplane/controlplane.js';
import { writeKubeconfig } from '../../src/lab/controlplane/kubeconfig.js';
import { AgentProcess } from '../agent/helpers/agent-process.js';
import { k8sTool } from '../helpers/k8s-tools.js';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CHART = join(ROOT, 'helm', 'sluice');
const NAMESPACE = 'kube-system';

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}
interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

/** `helm template` of the chart with `--set` pairs; the objects it renders. */
async function render(helm: string, set: readonly string[] = []): Promise<{ text: string; objects: K8sObject[] }> {
  const args = ['template', 'sluice', CHART, '--namespace', NAMESPACE, ...set.flatMap((s) => ['--set', s])];
  const { stdout } = await run(helm, args, { maxBuffer: 16 << 20 });
  const objects = parseAllDocuments(stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
  return { text: stdout, objects };
}

/** "group/resource:verb" for every API call the agent's informers make through a recording transport. */
async function informerCalls(): Promise<string[]> {
  const calls = new Set<string>();
  const triple = (path: string, verb: string): string => {
    // /api/v1/<resource> (core group "") or /apis/<group>/<version>/<resource>
    const core = /^\/api\/v1\/([a-z]+)$/.exec(path);
    const named = /^\/apis\/([a-z0-9.-]+)\/v[0-9a-z]+\/([a-z]+)$/.exec(path);
    if (core?.[1]) return `/${core[1]}:${verb}`;
    if (named?.[1] && named[2]) return `${named[1]}/${named[2]}:${verb}`;
    throw new Error(`unexpected API path ${path}`);
  };
  const transport: KubeTransport = {
    list(path: string, query: Query): Promise<ListPage> {
      calls.add(triple(path, query['watch'] === undefined ? 'list' : 'watch'));
      return Promise.resolve({ items: [], resourceVersion: '1' });
    },
    watch(path: string, _query: Query, _callbacks: WatchCallbacks): WatchHandle {
      calls.add(triple(path, 'watch'));
      return { stop: () => undefined };
    },
  };
  const informers = informerList(createInformers({ transport }));
  for (const i of informers) i.start();
  await Promise.all(informers.map((i) => i.whenSynced()));
  // A watch starts after the first list: wait until each informer made one.
  const deadline = performance.now() + 5000;
  while ([...calls].filter((c) => c.endsWith(':watch')).length < informers.length && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(informers.map((i) => i.stop()));
  return [...calls].sort();
}

function ruleTriples(rules: readonly PolicyRule[]): string[] {
  const out = new Set<string>();
  for (const r of rules) {
    assert.equal(r.resourceNames, undefined, 'no resourceNames: the agent lists whole collections');
    assert.equal(r.nonResourceURLs, undefined, 'no non-resource URLs');
    for (const g of r.apiGroups ?? []) {
      for (const res of r.resources ?? []) for (const v of r.verbs ?? []) out.add(`${g}/${res}:${v}`);
    }
  }
  return [...out].sort();
}

describe('helm chart', () => {
  let helm = '';
  let dir = '';

  before(async () => {
    helm = k8sTool('helm');
    dir = await mkdtemp(join(tmpdir(), 'sluice-chart-'));
  });
  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  test('helm lint --strict is clean with default and with set values', async () => {
    for (const set of [[], ['agent.config.mapSizes.policy=65536', 'agent.config.conntrack.udpMs=30000', 'cni.chain={portmap}']]) {
      const { stdout } = await run(helm, ['lint', '--strict', CHART, ...set.flatMap((s) => ['--set', s])]);
      assert.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(stdout, /\[(WARNING|ERROR)\]/);
    }
  });

  test('the ClusterRole grants exactly the calls of the agent informers', async () => {
    const { objects } = await render(helm);
    const roles = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
    assert.equal(roles.length, 1, 'one role');
    const role = roles[0] as K8sObject & { rules: PolicyRule[] };
    const calls = await informerCalls();
    assert.ok(calls.length >= 12, `list and watch of six resources, got ${calls.join(', ')}`);
    assert.deepEqual(ruleTriples(role.rules), calls);

    // The binding gives that role to the account the DaemonSet runs as, and nothing else is bound.
    const bindings = objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding');
    assert.equal(bindings.length, 1);
    const binding = bindings[0] as K8sObject & { roleRef: { name: string }; subjects: { kind: string; name: string; namespace: string }[] };
    assert.equal(binding.roleRef.name, role.metadata.name);
    const ds = objects.find((o) => o.kind === 'DaemonSet') as K8sObject & { spec: { template: { spec: { serviceAccountName: string } } } };
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: ds.spec.template.spec.serviceAccountName, namespace: NAMESPACE }]);
  });

  test('the ConfigMap is an agent config with the values set', async () => {
    const { objects } = await render(helm, [
      'agent.config.mapSizes.policy=65536', 'agent.config.conntrack.udpMs=30000', 'agent.config.httpListen=0.0.0.0:9999',
    ]);
    const cm = objects.find((o) => o.kind === 'ConfigMap') as K8sObject & { data: Record<string, string> };
    const file = join(dir, 'agent.yaml');
    await writeFile(file, cm.data['agent.yaml'] ?? '');
    const config = loadConfig({ configFile: file, nodeName: 'node-a', inCluster: true }, {});
    assert.equal(config.mapSizes.policy, 65536);
    assert.equal(config.conntrack.udpMs, 30000);
    assert.equal(config.httpListen, '0.0.0.0:9999');
    // Sluice replaces kube-proxy: its healthz (cloud load balancers) and status ports, on the node's network.
    assert.deepEqual([config.lb.healthzListen, config.lb.statusListen], ['0.0.0.0:10256', '127.0.0.1:10249']);
    // The probes follow the listen port.
    const ds = objects.find((o) => o.kind === 'DaemonSet') as K8sObject & {
      spec: { template: { spec: { containers: { readinessProbe: { httpGet: { port: number } } }[] } } };
    };
    assert.equal(ds.spec.template.spec.containers[0]?.readinessProbe.httpGet.port, 9999);
  });

  describe('against a real API server', () => {
    let cp: ControlPlane | undefined;
    before(async () => {
      cp = await ControlPlane.start();
    });
    after(async () => {
      await cp?.stop();
    });

    test('kubectl apply --dry-run=server accepts every rendered object', async () => {
      assert.ok(cp);
      const { text, objects } = await render(helm);
      const out = await cp.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: text });
      for (const o of objects) {
        const kind = o.kind.toLowerCase();
        assert.match(out, new RegExp(`^${kind}[./][^ ]*/?${o.metadata.name} (created|configured) \\(server dry run\\)$`, 'm'), `${o.kind} ${o.metadata.name}: ${out}`);
      }
    });

    test('with only the chart RBAC, the agent lists and watches everything and becomes ready, and cannot write', async () => {
      assert.ok(cp);
      const { objects } = await render(helm);
      const rbac = objects.filter((o) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind));
      await cp.kubectl(['apply', '-f', '-'], { input: rbac.map((o) => JSON.stringify(o)).join('\n') });
      const sa = rbac.find((o) => o.kind === 'ServiceAccount')?.metadata.name ?? '';
      const token = (await cp.kubectl(['create', 'token', sa, '-n', NAMESPACE])).trim();
      const kubeconfig = join(dir, 'sa.kubeconfig');
      writeKubeconfig(kubeconfig, { server: cp.server, caPem: cp.caPem, token, user: sa });

      const agent = new AgentProcess([
        '--datapath', 'none', '--kubeconfig', kubeconfig, '--node-name', 'node-a', '--state-dir', join(dir, 'state'),
        '--endpoint-socket', join(dir, 'agent.sock'), '--http-listen', '127.0.0.1:0',
      ]);
      try {
        await agent.ready(60_000);
        const forbidden = agent.lines.filter((l) => /forbidden/i.test(JSON.stringify(l)));
        assert.deepEqual(forbidden, []);
      } finally {
        agent.kill();
        await agent.exited;
      }
      const as = `--as=system:serviceaccount:${NAMESPACE}:${sa}`;
      for (const check of [['create', 'pods'], ['patch', 'nodes'], ['get', 'secrets'], ['delete', 'networkpolicies.networking.k8s.io']]) {
        // can-i prints "yes" or "no" and exits 1 on "no".
        const answer: string = await run(findBinaries().kubectl, [`--kubeconfig=${cp.kubeconfigPath}`, 'auth', 'can-i', ...check, as, '-A'])
          .then((r) => r.stdout, (e: { stdout?: string }) => e.stdout ?? '');
        assert.equal(answer.trim(), 'no', check.join(' '));
      }
    });
  });
});
