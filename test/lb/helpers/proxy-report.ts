/**
 * What each node's Service proxy was doing when an acceptance check failed:
 * kube-proxy's state and the end of its log, or the agent's /readyz and the
 * end of its log. Written to stderr (the runner shows it beside the test)
 * and appended to .cache/test-diagnostics.log, which scripts/test prints at
 * the end of a failed run, where a CI log that keeps only its last lines
 * still shows it.
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterLab } from '../../../src/lab/cluster/cluster-lab.js';
import { ROOT } from '../../datapath/addon-support.js';

export const DIAGNOSTICS_FILE = join(ROOT, '.cache', 'test-diagnostics.log');
const LOG_LINES = 12;

function lastLines(path: string, n: number): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-n).map((l) => l.slice(0, 400)).join('\n');
  } catch (e) {
    return `(cannot read ${path}: ${(e as Error).message})`;
  }
}

/** One node's proxy, as text. */
async function nodeReport(lab: ClusterLab, i: number): Promise<string> {
  const n = lab.nodes[i];
  if (n === undefined) return `node ${i + 1}: none`;
  const name = n.plan.name;
  const kubeProxy = lab.kubeProxy(name);
  if (kubeProxy !== undefined) {
    return `${name}: kube-proxy ${kubeProxy.running ? `running (pid ${String(kubeProxy.pid)})` : 'NOT running'}\n${kubeProxy.tail(LOG_LINES)}`;
  }
  let readyz: string;
  try {
    const r = await n.agent.get('/readyz', 3000);
    readyz = `/readyz ${r.status}: ${r.body.replace(/\s+/g, ' ').slice(0, 600)}`;
  } catch (e) {
    readyz = `/readyz failed: ${(e as Error).message}`;
  }
  return `${name}: agent ${n.agent.running ? `running (pid ${String(n.agent.pid)})` : 'NOT running'}, ${readyz}\n${lastLines(n.agent.config.logFile, LOG_LINES)}`;
}

/** Reports every node's proxy for the failed check `name`; never throws (the check's own failure is what counts). */
export async function reportFailure(name: string, lab: ClusterLab): Promise<void> {
  try {
    const parts = await Promise.all(lab.nodes.map((_, i) => nodeReport(lab, i)));
    const text = `--- ${new Date().toISOString()} failed: ${name}\n${parts.join('\n')}\n`;
    process.stderr.write(text.split('\n').map((l) => `# ${l}`).join('\n') + '\n');
    mkdirSync(join(ROOT, '.cache'), { recursive: true });
    appendFileSync(DIAGNOSTICS_FILE, text);
  } catch (e) {
    process.stderr.write(`# proxy report failed: ${(e as Error).message}\n`);
  }
}
