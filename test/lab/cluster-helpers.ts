/**
 * Shared by the cluster-lab tests: a ClusterLab (real control plane, agent
 * and CNI) under test-only names — lab "ld<random>" (or another two-letter
 * family), so every namespace is sluice-ld<random>-…, pins below
 * /sys/fs/bpf/sluice-t-ld-<random>/, state in /tmp/sluice-ld-<random>/ —
 * removed in full by `close()` even when `up`
 * failed half-way; and reachability probes between lab pods.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BPFFS_MOUNT, ensureBpffsMounted, ensurePinDir, removePinDir } from '../../src/datapath/bpffs.js';
import { ClusterLab, downCluster, type ClusterOptions } from '../../src/lab/cluster/cluster-lab.js';
import { execRunner } from '../../src/lab/command.js';
import type { LabPaths } from '../../src/lab/names.js';
import { until } from '../agent/helpers/wait.js';
import { labLeftovers, tcpProbe, udpAsk } from './helpers.js';

export interface TestCluster {
  readonly lab: ClusterLab;
  readonly name: string;
  readonly paths: LabPaths;
  /** Takes the lab down and checks that nothing of it is left. */
  close(): Promise<void>;
}

/** A fresh lab name of a two-letter family (`ld` unless told): [a-z0-9] only, as lab names must be. */
export function clusterLabName(family = 'ld'): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return `${family}${[...randomBytes(6)].map((b) => alphabet[b % alphabet.length]).join('')}`;
}

export interface StartClusterOptions {
  /** Two letters naming the lab family (pins sluice-t-<family>-…, state /tmp/sluice-<family>-…). */
  readonly family?: string;
  /** The agent's --map-size items. */
  readonly agentMapSizes?: Readonly<Record<string, number>>;
  /** Nodes, zones, routing (default: one node). */
  readonly cluster?: ClusterOptions;
}

export async function startCluster(pods: readonly string[], manifests: readonly unknown[], opts: StartClusterOptions = {}): Promise<TestCluster> {
  ensureBpffsMounted();
  const family = opts.family ?? 'ld';
  const name = clusterLabName(family);
  const bpffs = `${BPFFS_MOUNT}/sluice-t-${family}-${name.slice(family.length)}`;
  ensurePinDir(bpffs);
  const paths: LabPaths = { bpffs, stateDir: mkdtempSync(join(tmpdir(), `sluice-${family}-`)) };
  const deps = {
    runner: execRunner, paths, agentLogLevel: 'warn',
    ...(opts.agentMapSizes !== undefined ? { agentMapSizes: opts.agentMapSizes } : {}),
  };
  const cleanup = async (): Promise<void> => {
    await downCluster(deps, name).catch(() => undefined);
    removePinDir(bpffs);
    rmSync(paths.stateDir, { recursive: true, force: true });
  };
  let lab: ClusterLab;
  try {
    lab = await ClusterLab.up(deps, { name, pods }, manifests, opts.cluster ?? {});
  } catch (e) {
    await cleanup();
    throw e;
  }
  return {
    lab,
    name,
    paths,
    async close() {
      try {
        const report = await lab.stop();
        const dels = report.cluster.filter((r) => r.startsWith('CNI DEL '));
        assert.equal(dels.length, lab.livePlan.pods.length, `every pod was DELeted through the CNI: ${report.cluster.join(', ')}`);
      } finally {
        await cleanup();
      }
      assert.deepEqual(await labLeftovers(name), [], 'nothing of the lab is left');
      assert.equal(existsSync(bpffs), false);
    },
  };
}

export type Verdict = 'open' | 'closed';

let nextLocalPort = 20000 + Math.floor(Math.random() * 20000);

/**
 * One TCP connect or UDP echo from pod `from` to pod `to`: open when it got
 * through (a refused connect got an answer, so it passed too), closed on a
 * timeout. Every probe uses a new source port: no conntrack entry of an
 * earlier probe can decide it.
 */
export async function probe(c: TestCluster, from: string, to: string, proto: 'tcp' | 'udp', port: number): Promise<Verdict> {
  const src = c.lab.pod(from);
  const dst = c.lab.pod(to);
  const local = nextLocalPort++;
  if (proto === 'udp') return (await udpAsk(src.netns, dst.ipv4, port, local, 700)) === 'answered' ? 'open' : 'closed';
  const r = await tcpProbe(src.netns, dst.ipv4, port, local, 700);
  if (r === 'connected' || /refused/i.test(r)) return 'open';
  if (r === 'timeout') return 'closed';
  throw new Error(`tcp ${from} -> ${to}:${port}: ${r}`);
}

/** Waits until the probe gives `want` (policy reaches the maps asynchronously). */
export async function eventually(c: TestCluster, from: string, to: string, proto: 'tcp' | 'udp', port: number, want: Verdict, ms = 20_000): Promise<void> {
  await until(`${proto} ${from} -> ${to}:${port} ${want}`, async () => (await probe(c, from, to, proto, port)) === want, ms);
}

/** Probes that must hold now (after an `eventually` showed the change arrived). */
export async function expectNow(c: TestCluster, cases: readonly (readonly [string, string, 'tcp' | 'udp', number, Verdict])[]): Promise<void> {
  for (const [from, to, proto, port, want] of cases) {
    assert.equal(await probe(c, from, to, proto, port), want, `${proto} ${from} -> ${to}:${port}`);
  }
}

/** Pods of the tests: a client, and a web server with the named port http (5201/TCP). */
export const CLIENT_POD = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', labels: { app: 'client' } }, spec: { containers: [{ name: 'shell' }] } };

export const DENY_ALL_INGRESS = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: default}
spec: {podSelector: {}, policyTypes: [Ingress]}
`;

/** web pods accept clients on their named port http. */
export const ALLOW_HTTP = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-allow-clients, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: http}]
`;
