/**
 * Fault injection for the crash-safety tests: SLUICE_CNI_TEST_CRASH_AT=<step>
 * kills this process with SIGKILL when ADD reaches that step, exactly as an
 * OOM kill or a node hiccup would — no cleanup, no output. Steps:
 * after-ipam, after-veth, after-register, after-attach, after-pod.
 * Unset in production; reading one variable costs nothing.
 */
export const CRASH_ENV = 'SLUICE_CNI_TEST_CRASH_AT';

export type CrashStep = 'after-ipam' | 'after-veth' | 'after-register' | 'after-attach' | 'after-pod';

/** crashAt: the invocation's SLUICE_CNI_TEST_CRASH_AT (CniEnv.crashAt), never the agent's own environment. */
export function crashPoint(step: CrashStep, crashAt: string | undefined): void {
  if (crashAt === step) process.kill(process.pid, 'SIGKILL');
}
