/**
 * One CNI invocation: environment and stdin in, stdout text and exit code
 * out. Errors become the spec's error object ({cniVersion, code, msg,
 * details}) on stdout with exit 1 — libcni's invoke parses stdout, not
 * stderr — and a one-line copy on stderr for the runtime's log.
 *
 * The agent is reached through the EndpointPort the caller connects for the
 * config: the HTTP client on conf.agentSocket in the Node plugin (main.ts),
 * the agent's own endpoint service when the agent runs the plugin
 * (in-process.ts).
 */
import type { CniOutcome, EndpointPort } from '../endpoint/contract.js';
import { CniAgent } from './agent.js';
import { cmdAdd } from './add.js';
import { cmdCheck } from './check.js';
import { decodeConfig, parseConfig, type NetConf } from './config.js';
import { cmdDel } from './del.js';
import { readCommand, readEnv, type CniCommand } from './env.js';
import { CniCode, CniError } from './errors.js';
import { cmdGc } from './gc.js';
import { encodeResult } from './result.js';
import { cmdStatus } from './status.js';
import { CURRENT_VERSION, isSupported, requireVersionFor, VERSION_ANSWER } from './version.js';

type Env = Readonly<Record<string, string | undefined>>;

/** How the plugin reaches the agent the config names. */
export type ConnectAgent = (conf: NetConf) => EndpointPort;

export async function invoke(env: Env, stdin: string, connect: ConnectAgent): Promise<CniOutcome> {
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
    const agent = new CniAgent(connect(conf), conf.agentSocket);
    switch (command) {
      case 'ADD':
        return ok(`${JSON.stringify(encodeResult(await cmdAdd(cniEnv, conf, agent), conf.cniVersion))}\n`);
      case 'DEL':
        await cmdDel(cniEnv, conf, agent);
        return ok('');
      case 'CHECK':
        await cmdCheck(cniEnv, conf, agent);
        return ok('');
      case 'STATUS':
        await cmdStatus(conf, agent);
        return ok('');
      case 'GC':
        await cmdGc(conf, agent);
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

function ok(stdout: string): CniOutcome {
  return { stdout, stderr: '', exitCode: 0 };
}
