// A control plane must not outlive its owner: when the owning Node process
// exits without stop(), is sent SIGTERM, or is SIGKILLed, the components die
// with it, and its temp dir is removed (at once, or for SIGKILL by the next
// start()). Needs the real binaries (scripts/build-controlplane); fails, never
// skips, without them.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findBinaries } from '../../src/lab/controlplane/binaries.js';
import { ControlPlane } from '../../src/lab/controlplane/controlplane.js';
import { isProcessAlive } from '../../src/lab/controlplane/process.js';

const childScript = fileURLToPath(new URL('./owner-child.js', import.meta.url));
let base: string;

interface Started {
  child: ChildProcess;
  dir: string;
  pids: number[];
}

/** Starts owner-child.js and waits for its {dir, pids} line. */
async function startOwner(): Promise<Started> {
  const child = spawn(process.execPath, [childScript, base], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`owner-child exited (${String(code)}) before starting: ${stderr}`))),
  );
  const first = new Promise<string>((resolve) => lines.once('line', resolve));
  const line = await Promise.race([first, exited]);
  const parsed = JSON.parse(line) as { dir: string; pids: number[] };
  return { child, ...parsed };
}

async function allDead(pids: readonly number[], withinMs: number): Promise<void> {
  const start = performance.now();
  while (pids.some(isProcessAlive)) {
    if (performance.now() - start > withinMs) assert.fail(`still alive after ${withinMs} ms: ${pids.filter(isProcessAlive).join(', ')}`);
    await sleep(50);
  }
}

function waitExit(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

describe('control plane owner death', () => {
  let missing: Error | undefined;
  before(() => {
    base = mkdtempSync('/dev/shm/sluice-cp-exit-test-');
    try {
      findBinaries();
    } catch (e) {
      missing = e instanceof Error ? e : new Error(String(e));
    }
  });
  // Each test FAILS (not cancels) with the build instruction when binaries are missing.
  const requireBuilt = (): void => {
    if (missing !== undefined) throw missing;
  };
  after(() => rmSync(base, { recursive: true, force: true }));

  // Exit hooks: on process.exit() and on SIGTERM (turned into exit code 143).
  const endings: [string, (s: Started) => void, number][] = [
    ['process.exit() without stop()', (s) => s.child.stdin?.write('exit\n'), 0],
    ['SIGTERM to the owner', (s) => s.child.kill('SIGTERM'), 128 + 15],
  ];
  for (const [how, end, exitCode] of endings) {
    test(`${how}: components killed, dir removed`, async () => {
      requireBuilt();
      const s = await startOwner();
      assert.equal(s.pids.length, 3);
      assert.ok(s.pids.every(isProcessAlive));
      end(s);
      await waitExit(s.child);
      assert.equal(s.child.exitCode, exitCode);
      await allDead(s.pids, 2000);
      assert.equal(existsSync(s.dir), false);
    });
  }

  test('SIGKILL to the owner: pdeathsig kills the components; the next start() sweeps the dir', async () => {
    requireBuilt();
    const s = await startOwner();
    s.child.kill('SIGKILL');
    await waitExit(s.child);
    await allDead(s.pids, 5000);
    assert.equal(existsSync(s.dir), true, 'nothing could remove it yet');
    const cp = await ControlPlane.start({ baseDir: base });
    try {
      assert.equal(existsSync(s.dir), false, 'start() removed the dead owner\'s dir');
      assert.deepEqual(readdirSync(base), [cp.dir.slice(base.length + 1)]);
    } finally {
      await cp.stop();
    }
    assert.deepEqual(readdirSync(base), []);
  });
});
