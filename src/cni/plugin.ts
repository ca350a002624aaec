/**
 * One CNI invocation: environment and stdin in, stdout text and exit code
 * out. Errors become the spec's error object ({cniVersion, code, msg,
 * details}) on stdout with exit 1 — libcni's invoke parses stdout, not
 * stderr — and a one-line copy on stderr for the runtime's log.
 */
import { AgentPort } from './agent.js';
import { cmdAdd } from './add.js';
import { cmdCheck } from './check.js';
import { spawnCommand, type CommandRunner } from './command.js';
import { decodeConfig, parseConfig, type NetConf } from './config.js';
import { cmdDel } from './del.js';
import { readCommand, readEnv, type CniCommand } from './env.js';
import { CniCode, CniError } from './errors.js';
import { cmdGc } from './gc.js';
import { ipBatchWith } from './iproute.js';
import { encodeResult } from './result.js';
import { netlinkEnabled, netlinkOps } from './rtnl.js';
import { cmdStatus } from './status.js';
import { CURRENT_VERSION, isSupported, requireVersionFor, VERSION_ANSWER } from './version.js';

export interface Outcome {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

type Env = Readonly<Record<string, string | undefined>>;

/** run: how `ip` children are started (the Node plugin spawns them; the agent passes its command helper). */
export async function invoke(env: Env, stdin: string, run: CommandRunner = spawnCommand): Promise<Outcome> {
  let version: string = CURRENT_VERSION;
  try {
    const command = readCommand(env);
    if (command === 'VERSION') {
      return ok(VERSION_ANSWER);
    }
    // The environment first, as libcni's skel does: a runtime that sends no container id gets told that.
    const cniEnv = readEnv(env);
    const raw = decodeConfig(stdin);
    if (typeof raw['cniVersion'] === 'string' && isSupported(raw['cniVersion'])) version = raw['cniVersion'];
    const conf = parseConfig(raw);
    minimumVersion(command, conf);
    const agent = new AgentPort(conf.agentSocket, conf.timeoutMs);
    const ip = netlinkEnabled(env) ? Object.assign(ipBatchWith(run), { netlink: netlinkOps }) : ipBatchWith(run);
    switch (command) {
      case 'ADD':
        return ok(`${JSON.stringify(encodeResult(await cmdAdd(cniEnv, conf, agent, ip), conf.cniVersion))}\n`);
      case 'DEL':
        await cmdDel(cniEnv, conf, agent, ip);
        return ok('');
      case 'CHECK':
        await cmdCheck(cniEnv, conf, agent, ip);
        return ok('');
      case 'STATUS':
        await cmdStatus(conf, agent);
        return ok('');
      case 'GC':
        await cmdGc(conf, agent, ip);
        return ok('');
    }
  } catch (e) {
    const err = e instanceof CniError ? e : new CniError(CniCode.INTERNAL, `unexpected failure: ${(e as Error).stack ?? String(e)}`);
    const body = { cniVersion: version, code: err.code, msg: err.message, ...(err.details !== '' ? { details: err.details } : {}) };
    return { stdout: `${JSON.stringify(body)}\n`, stderr: `sluice-cni: error ${err.code}: ${err.message}\n`, exitCode: 1 };
  }
}

/** CHECK since 0.4.0; STATUS and GC since 1.1.0. */
function minimumVersion(command: CniCommand, conf: NetConf): void {
  if (command === 'CHECK') requireVersionFor(command, conf.cniVersion, '0.4.0');
  if (command === 'STATUS' || command === 'GC') requireVersionFor(command, conf.cniVersion, '1.1.0');
}

function ok(stdout: string): Outcome {
  return { stdout, stderr: '', exitCode: 0 };
}
