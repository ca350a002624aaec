/**
 * A cluster lab driven through the `sluice lab` CLI as a user runs it (a
 * detached lab process), with its pins and state in directories of the
 * test ($SLUICE_LAB_BPFFS, $SLUICE_LAB_STATE_DIR), and the check that
 * nothing of it is left: namespaces, pins, files, processes, the control
 * plane's directory.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BPFFS_MOUNT, ensureBpffsMounted, ensurePinDir, removePinDir } from '../../src/datapath/bpffs.js';
import { isProcessAlive } from '../../src/lab/controlplane/process.js';
import type { LabState } from '../../src/lab/state.js';
import { clusterLabName } from './cluster-helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class DetachedLab {
  readonly name: string;
  readonly bpffs: string;
  readonly stateDir: string;
  private readonly env: NodeJS.ProcessEnv;

  /** family: the test's short tag, in the lab name and its directories. */
  constructor(family: string, private readonly timeoutMs: number) {
    this.name = clusterLabName(family);
    ensureBpffsMounted();
    this.bpffs = `${BPFFS_MOUNT}/sluice-t-${family}-${this.name.slice(2)}`;
    ensurePinDir(this.bpffs);
    this.stateDir = mkdtempSync(join(tmpdir(), `sluice-${family}-`));
    this.env = { ...process.env, SLUICE_LAB_BPFFS: this.bpffs, SLUICE_LAB_STATE_DIR: this.stateDir };
  }

  /** `sluice lab ARGS…`; up and down print how long they took (the slow ones, for the report). */
  sluice(...args: string[]): Promise<CliResult> {
    const started = performance.now();
    return new Promise((resolve) => {
      execFile(process.execPath, [MAIN, 'lab', ...args], { env: this.env, encoding: 'utf8', timeout: this.timeoutMs }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        if (args[0] === 'up' || args[0] === 'down') process.stdout.write(`# sluice lab ${args[0]}: ${Math.round(performance.now() - started)} ms\n`);
        resolve({ code, stdout, stderr });
      });
    });
  }

  state(): LabState {
    return JSON.parse(readFileSync(join(this.stateDir, `${this.name}.json`), 'utf8')) as LabState;
  }

  /** Everything of the lab that could be left. */
  leftovers(cpDir: string | undefined, pids: readonly number[]): string[] {
    const found = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(`sluice-${this.name}-`));
    found.push(...readdirSync(this.bpffs), ...readdirSync(this.stateDir));
    if (cpDir !== undefined && existsSync(cpDir)) found.push(cpDir);
    found.push(...pids.filter(isProcessAlive).map((p) => `pid ${p}`));
    return found;
  }

  /** `lab down`, then the test's directories go. */
  async remove(): Promise<void> {
    await this.sluice('down', '--name', this.name);
    removePinDir(this.bpffs);
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
