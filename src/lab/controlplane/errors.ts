/**
 * Control-plane harness errors as data: a code that callers and tests branch
 * on, the component at fault, and a message that says what to do about it
 * (which binary is missing, which endpoint never became ready, and the last
 * lines that process printed).
 */

export type ControlPlaneErrorCode =
  | 'binaries-missing' // a built binary is not in the cache: run scripts/build-controlplane
  | 'versions-file' // tools/k8s-bin/versions is missing or malformed
  | 'spawn-failed' // a binary could not be started at all
  | 'exited' // a component exited while we waited for it to become ready
  | 'not-ready' // a component did not become ready before its deadline
  | 'kubectl-failed' // kubectl exited non-zero
  | 'invalid-state'; // e.g. startApiserver() while it runs, or any call after stop()

export class ControlPlaneError extends Error {
  override readonly name = 'ControlPlaneError';
  constructor(
    readonly code: ControlPlaneErrorCode,
    message: string,
    /** etcd, kube-apiserver, kube-controller-manager, kubectl, or undefined for the whole. */
    readonly component?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Narrows an unknown thrown value to an Error for messages. */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
