/**
 * Run as a separate process by exit.test.ts: `owner-child.js <baseDir>`
 * starts a control plane under baseDir, prints {dir, pids} as one JSON line,
 * then waits. On "exit" from stdin it calls process.exit(0) without stop(),
 * so the parent can check that exit hooks (or, for SIGKILL, pdeathsig and the
 * stale-dir sweep) leave nothing behind. Without an argument (e.g. picked up
 * by `node --test <dir>`) it does nothing.
 */
import { ControlPlane } from '../../src/lab/controlplane/controlplane.js';

const baseDir = process.argv[2];
if (baseDir) {
  const cp = await ControlPlane.start({ baseDir });
  process.stdout.write(`${JSON.stringify({ dir: cp.dir, pids: [...cp.pids().values()] })}\n`);
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    if (d.includes('exit')) process.exit(0);
  });
}
