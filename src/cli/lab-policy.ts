/**
 * `sluice lab policy apply -f FILE… --name LAB`: real NetworkPolicies on a
 * lab's real pods. The manifests are the lab's whole policy (a policy not in
 * them is removed, as with `kubectl apply --prune`); they may also hold
 * Namespaces, and Pods that describe lab pods (lab-policy-cluster.ts: a lab
 * pod is default/<name> labelled app=<name> unless a Pod says otherwise).
 *
 * The cluster is compiled with the ids of the previous apply
 * (lab-policy-store.ts), diffed against the lab's pinned maps as read back
 * (not against what was meant to be there), and only the difference is
 * written, by the agent's own map owners (src/reconcile/policy-group.ts). Exit codes: 0 applied, 2 bad input (naming
 * file and field), 1 the lab is missing or a write failed (reported; the
 * failure leaves pods closed, never open).
 */
import type { Command } from 'commander';
import { openPinnedDatapathMaps } from '../datapath/pinned-maps.js';
import { defaultLabPaths, policyStorePathFor, statePathFor } from '../lab/names.js';
import { readState } from '../lab/state.js';
import { compilePolicy, type CompiledPolicy } from '../policy/compile.js';
import { diffDatapath, diffSize, type DatapathDiff } from '../policy/diff.js';
import { applyDatapathState, policyGroup, type ApplyReport } from '../reconcile/policy-group.js';
import { PolicyError } from '../policy/errors.js';
import { labCluster } from './lab-policy-cluster.js';
import { readStoredIds, writeStoredIds } from './lab-policy-store.js';
import { CliInputError, loadCluster } from './policy-input.js';

interface ApplyOptions {
  readonly name: string;
  readonly file: string[];
  readonly dryRun?: boolean;
  readonly output: string;
}

export function registerLabPolicyCommands(lab: Command): void {
  const policy = lab.command('policy').description("NetworkPolicy on a lab's pods");
  policy
    .command('apply')
    .description("compile NetworkPolicies against the lab's pods and write the difference to its maps")
    .option('--name <name>', 'lab name', 'dev')
    .option('-f, --file <path>', 'manifest file or directory (YAML or JSON; "-" = stdin); repeatable', (v: string, acc: string[]) => [...acc, v], [])
    .option('--dry-run', 'compile and diff, write nothing')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: ApplyOptions) => {
      try {
        await apply(opts);
      } catch (e) {
        const input = e instanceof CliInputError || e instanceof PolicyError;
        process.stderr.write(`sluice lab policy: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = input ? 2 : 1;
      }
    });
}

async function apply(opts: ApplyOptions): Promise<void> {
  if (opts.output !== 'text' && opts.output !== 'json') throw new CliInputError(`-o: "${opts.output}" is not one of text, json`);
  const state = await readState(statePathFor(defaultLabPaths, opts.name));
  if (state === undefined) throw new Error(`lab "${opts.name}" does not exist (no state file); create it with \`sluice lab up --name ${opts.name}\``);
  if (state.cluster !== undefined) {
    throw new Error(`lab "${opts.name}" is a cluster lab: its policies come from the API server (kubectl --kubeconfig ${state.cluster.kubeconfig} apply -f ...)`);
  }
  if (!state.plan.datapath) throw new Error(`lab "${opts.name}" runs without datapath: nothing enforces policy there`);

  const manifests = loadCluster(opts.file, (line) => process.stderr.write(`${line}\n`));
  const built = labCluster(state.plan.pods, manifests);
  if (!built.ok) throw new CliInputError(built.errors.join('\n'));
  const { cluster, endpoints } = built.value;

  const storePath = policyStorePathFor(defaultLabPaths, opts.name);
  const stored = await readStoredIds(storePath, state.createdAt);
  const maps = openPinnedDatapathMaps(state.plan.pinRoot);
  try {
    const group = policyGroup(maps);
    const current = group.current();
    const compiled = compilePolicy({ cluster, endpoints }, { ...(stored ?? {}), datapath: current });
    const diff = diffDatapath(current, compiled.datapath);
    const report = opts.dryRun === true ? undefined : applyDatapathState(group, compiled.datapath);
    if (report !== undefined) await writeStoredIds(storePath, state.createdAt, { identityTable: compiled.identities.table, ruleTable: compiled.rules });
    const size = report?.planned ?? diffSize(diff);
    process.stdout.write(opts.output === 'json' ? `${JSON.stringify(summary(opts.name, compiled, diff, report))}\n` : text(opts.name, compiled, diff, size, report));
    if (report !== undefined && !report.ok) process.exitCode = 1;
  } finally {
    maps.close();
  }
}

function counts(d: DatapathDiff): Record<'ipcache' | 'endpoints' | 'policy', { added: number; changed: number; removed: number }> {
  const c = (m: { added: readonly unknown[]; changed: readonly unknown[]; removed: readonly unknown[] }): { added: number; changed: number; removed: number } =>
    ({ added: m.added.length, changed: m.changed.length, removed: m.removed.length });
  return { ipcache: c(d.ipcache), endpoints: c(d.endpoints), policy: c(d.policy) };
}

function summary(lab: string, compiled: CompiledPolicy, diff: DatapathDiff, report: ApplyReport | undefined): object {
  return {
    lab,
    policies: compiled.cluster.policies.length,
    pods: [...compiled.endpoints.values()].map((e) => ({ pod: e.pod.id, endpointId: e.endpointId, identity: compiled.identities.podIdentity.get(e.pod.id), isolatedBy: e.isolatedBy, revision: e.entry.policyRevision })),
    diff: counts(diff),
    ...(report === undefined ? { dryRun: true } : { applied: report }),
  };
}

function text(lab: string, compiled: CompiledPolicy, diff: DatapathDiff, size: number, report: ApplyReport | undefined): string {
  const c = counts(diff);
  const part = (name: string, m: { added: number; changed: number; removed: number }): string => `${name} +${m.added} ~${m.changed} -${m.removed}`;
  const head = report === undefined ? 'would write' : report.ok ? 'applied' : 'FAILED to apply';
  const lines = [
    `lab "${lab}": ${compiled.cluster.policies.length} policies over ${compiled.endpoints.size} pods: ${head} ${size} changes ` +
      `(${part('ipcache', c.ipcache)}, ${part('endpoints', c.endpoints)}, ${part('policy', c.policy)})`,
  ];
  for (const e of compiled.endpoints.values()) {
    const dirs = (['ingress', 'egress'] as const).filter((d) => e.isolatedBy[d].length > 0).map((d) => `${d} isolated by ${e.isolatedBy[d].join(', ')}`);
    lines.push(`  ${e.pod.id} (endpoint ${e.endpointId}, identity ${compiled.identities.podIdentity.get(e.pod.id) ?? '?'}): ${dirs.length > 0 ? dirs.join('; ') : 'not isolated'}`);
  }
  for (const f of report?.failures ?? []) lines.push(`  failed: ${f.step} ${f.map} ${f.key}: ${f.message}`);
  if (report !== undefined && !report.ok) {
    const fc = report.failClosed;
    lines.push(`  fail-closed: endpoints closed [${fc.endpointsClosed.join(', ')}], identities without allows [${fc.taintedIdentities.join(', ')}]`);
  }
  return `${lines.join('\n')}\n`;
}
