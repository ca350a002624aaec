/**
 * Runs the built kubectl against a kubeconfig. Arguments go to execFile (no
 * shell); failures carry the command line and kubectl's own stderr.
 */
import { execFile } from 'node:child_process';
import { ControlPlaneError } from './errors.js';

export interface KubectlOptions {
  /** Written to kubectl's stdin (e.g. for `apply -f -`). */
  readonly input?: string;
  readonly timeoutMs?: number;
}

export function runKubectl(
  kubectl: string,
  kubeconfig: string,
  args: readonly string[],
  options: KubectlOptions = {},
): Promise<string> {
  const argv = [`--kubeconfig=${kubeconfig}`, ...args];
  return new Promise((resolve, reject) => {
    const child = execFile(
      kubectl,
      argv,
      { encoding: 'utf8', maxBuffer: 64 << 20, timeout: options.timeoutMs ?? 30000 },
      (err, stdout, stderr) => {
        if (err) {
          const detail = stderr.trim() || err.message;
          reject(new ControlPlaneError('kubectl-failed', `kubectl ${args.join(' ')}: ${detail}`, 'kubectl', { cause: err }));
          return;
        }
        resolve(stdout);
      },
    );
    child.stdin?.end(options.input ?? '');
  });
}
