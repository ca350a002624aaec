/**
 * `sluice lab up --cluster`: the lab with a real control plane, agent and
 * CNI (src/lab/cluster). The control plane and the agent live as long as the
 * process that started them, so by default `up` starts a detached
 * `sluice lab up --cluster --foreground` (output in <stateDir>/<lab>.log),
 * waits until it reports the lab ready (or failed), prints its summary and
 * returns; `sluice lab down` stops that process, which DELs every pod
 * through the CNI, then removes whatever is left. With --foreground the lab
 * lives until SIGINT/SIGTERM.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { execRunner } from '../lab/command.js';
import { join } from 'node:path';
import { ClusterLab, type ClusterLabDeps, type ClusterOptions } from '../lab/cluster/cluster-lab.js';
import { controlRequest, serveControl, type ControlRequest, type PodDeleteRequest, type PodFinishRequest, type PodReadyRequest, type ProxyRequest } from '../lab/cluster/control.js';
import { LabError, asError } from '../lab/errors.js';
import { clusterDirFor, clusterLogFor, defaultLabPaths } from '../lab/names.js';
import type { LabSpec } from '../lab/spec.js';
import { CliInputError, readSources } from './policy-input.js';

/** The message a detached `up` sends its parent over IPC. */
interface UpMessage {
  readonly ok: boolean;
  readonly text: string;
}

/** Pods and Namespaces from `-f` files (YAML or JSON, several documents each). */
export function readLabManifests(files: readonly string[]): unknown[] {
  if (files.length === 0) return [];
  const out: unknown[] = [];
  for (const src of readSources(files)) {
    for (const doc of parseAllDocuments(src.text)) {
      if (doc.errors.length > 0) throw new CliInputError(`${src.file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const v: unknown = doc.toJS();
      if (v !== null && v !== undefined) out.push(v);
    }
  }
  return out;
}

/** The lines `up` prints: pods, and how to reach the API server. */
export function clusterSummary(lab: ClusterLab, ms: number): string {
  const pods = lab.livePlan.pods.map((p) => `${p.name}=${p.ipv4}${p.node !== undefined ? `@${p.node}` : ''}`).join(' ');
  const nodes = lab.nodes.length > 1
    ? lab.nodes.map((n) => `node:       ${n.plan.name} ${n.plan.internalIp ?? '-'} podCIDR ${n.plan.podCidr} zone ${n.plan.zone ?? '-'}  agent ${n.agent.curl('/readyz')}${proxyNote(lab, n.plan.name)}`)
    : [`agent:      ${lab.agent.curl('/readyz')}   (log ${lab.agent.config.logFile})`];
  const kubectl = lab.controlPlane.binaries.kubectl;
  return [
    `lab "${lab.plan.name}" up (cluster, ${(ms / 1000).toFixed(1)} s): ${pods}`,
    `kubeconfig: ${lab.kubeconfig}`,
    `kubectl:    alias kubectl='${kubectl} --kubeconfig ${lab.kubeconfig}'`,
    ...nodes,
    '',
  ].join('\n');
}

/** ", kube-proxy (mode) pid N, log …" for a node whose Services kube-proxy implements. */
function proxyNote(lab: ClusterLab, node: string): string {
  const kp = lab.kubeProxy(node);
  return kp === undefined ? '' : `  kube-proxy ${kp.config.mode} pid ${String(kp.pid)} (log ${kp.config.logFile})`;
}

/** Runs the lab in this process until SIGINT/SIGTERM, then takes it down. */
export async function clusterUpForeground(spec: LabSpec, files: readonly string[], options: ClusterOptions = {}): Promise<void> {
  const t0 = performance.now();
  const manifests = readLabManifests(files);
  let stopRequested = false;
  let wake: () => void = () => {};
  const onSignal = (): void => {
    stopRequested = true;
    wake();
  };
  // Installed before the control plane starts, so its exit hook leaves SIGTERM to us.
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  const deps: ClusterLabDeps = { runner: execRunner, paths: defaultLabPaths, log: (line) => process.stderr.write(`${line}\n`) };
  let lab: ClusterLab;
  try {
    lab = await ClusterLab.up(deps, spec, manifests, options);
  } catch (e) {
    report({ ok: false, text: asError(e).message });
    throw e;
  }
  // `sluice lab node add` and `sluice lab pod …` ask this process (control.ts).
  const control = await serveControl(join(lab.dir, CONTROL_SOCKET), (req) => handleControl(lab, req));
  report({ ok: true, text: clusterSummary(lab, performance.now() - t0) });
  if (!stopRequested) await new Promise<void>((r) => (wake = r));
  control.close();
  const down = await lab.stop();
  process.stderr.write(`lab "${lab.plan.name}" down: ${down.cluster.join(', ')}\n`);
  process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
}

const CONTROL_SOCKET = 'control.sock';

/** Carries out one control request on the lab this process owns; the answer's text. */
async function handleControl(lab: ClusterLab, req: ControlRequest): Promise<string> {
  switch (req.op) {
    case 'node-add': {
      if (lab.nodes.length < 2) throw new LabError('invalid-spec', 'a one-node lab has no fabric to add a node to: start it with --nodes 2 or more', 'nodes');
      const n = await lab.addNode({ ...(req.zone !== undefined ? { zone: req.zone } : {}), ...(req.pods !== undefined ? { pods: req.pods } : {}) });
      const pods = lab.livePlan.pods.filter((p) => p.node === n.plan.name).map((p) => `${p.name}=${p.ipv4}`).join(' ');
      return `node ${n.plan.name} up: ${n.plan.internalIp ?? '-'} podCIDR ${n.plan.podCidr} zone ${n.plan.zone ?? '-'}${pods !== '' ? `; pods ${pods}` : ''}\n`;
    }
    case 'pod-ready':
      await lab.setPodReady(req.pod, req.ready);
      return `pod ${req.pod}: ${req.ready ? 'ready' : 'not ready'}\n`;
    case 'pod-delete': {
      const { deadline } = await lab.deletePod(req.pod, req.gracePeriodSeconds);
      return req.gracePeriodSeconds === 0 ? `pod ${req.pod}: deleted\n` : `pod ${req.pod}: terminating until ${deadline.toISOString()}, then deleted\n`;
    }
    case 'pod-finish':
      await lab.finishPod(req.pod);
      return `pod ${req.pod}: deleted\n`;
    case 'proxy':
      await lab.useProxy(req.proxy);
      return `Services on ${lab.nodes.length} nodes: ${req.proxy}\n`;
  }
}

/** `sluice lab pod ready|not-ready|delete|finish` and `sluice lab proxy`: asks the lab process. */
export async function clusterRequest(name: string, req: PodReadyRequest | PodDeleteRequest | PodFinishRequest | ProxyRequest): Promise<void> {
  process.stdout.write(await controlRequest(join(clusterDirFor(defaultLabPaths, name), CONTROL_SOCKET), req));
}

/** `sluice lab node add`: one more node (and pods on it) in a running several-node lab. */
export async function clusterNodeAdd(name: string, opts: { readonly zone?: string; readonly pods?: readonly string[] }): Promise<void> {
  const text = await controlRequest(join(clusterDirFor(defaultLabPaths, name), CONTROL_SOCKET), { op: 'node-add', ...opts });
  process.stdout.write(text);
}

/** Starts the foreground variant detached and waits for its verdict. */
export async function clusterUpDetached(argv: readonly string[], name: string): Promise<void> {
  const logPath = clusterLogFor(defaultLabPaths, name);
  await mkdir(defaultLabPaths.stateDir, { recursive: true });
  const log = openSync(logPath, 'a');
  const child = spawn(process.execPath, [...argv, '--foreground'], { detached: true, stdio: ['ignore', log, log, 'ipc'] });
  closeSync(log);
  const verdict = await new Promise<UpMessage>((resolve) => {
    child.once('message', (m: UpMessage) => resolve(m));
    child.once('exit', (code) => resolve({ ok: false, text: `the lab process exited (${String(code)}) before it was ready; log ${logPath}:\n${tail(logPath)}` }));
  });
  child.removeAllListeners('exit');
  child.disconnect();
  child.unref();
  if (!verdict.ok) throw new LabError('setup-failed', verdict.text, 'cluster');
  process.stdout.write(`${verdict.text}lab process: pid ${String(child.pid)} (log ${logPath}); \`sluice lab down --name ${name}\` stops it\n`);
}

function report(m: UpMessage): void {
  if (process.send) {
    process.send(m);
    process.disconnect();
  } else if (m.ok) {
    process.stdout.write(m.text);
  }
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
