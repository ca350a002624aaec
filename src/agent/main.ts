#!/usr/bin/env node
/**
 * sluice-agent: the per-node agent. Reads flags and the config file, builds
 * the agent over the real API server and datapath, runs until SIGTERM or
 * SIGINT, then stops cleanly (the pinned maps keep enforcing).
 *
 * Exit codes: 0 stopped by a signal, 2 bad flags or config, 1 anything else.
 */
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { Agent } from './agent.js';
import { loadConfig } from './config.js';
import { openBpfDatapath, type BpfDatapath } from './datapath/reconcilers.js';
import { rtnlNodeNetwork } from '../datapath/routes.js';
import { applyHostSockets } from './datapath/host-sockets.js';
import { HostUdpSockets } from '../datapath/sock-lb.js';
import { COMPILE_SEED_FILE, CompileSeedFile, SeedKeeper, type StoredSeed } from './datapath/seed-file.js';
import { dryRunDatapath } from './dry-run.js';
import { AgentError, asError } from './errors.js';
import { parseCommandLine, USAGE } from './flags.js';
import { ApiServerTransport } from './k8s/api-transport.js';
import { loadKubeConfig } from './k8s/kubeconfig.js';
import { createLogger, type Logger } from './logger.js';

// Memory over peak speed (bench/agent, 5,000 pods; docs/agent.md, Memory): --optimize-for-size keeps
// the old generation close to what is live (≈ 205 → 150 MiB RSS when it came in); a young generation
// that stays at its initial 1 MiB semi-spaces instead of doubling up to 8 MiB takes ≈ 10 MiB more off
// the RSS when ready, for the same start → ready and sync times. Both take effect when set at run time,
// so they hold however the binary is started (`node main.js`, the bin entry, a test harness).
setFlagsFromString('--optimize-for-size');
setFlagsFromString('--semi-space-growth-factor=1');

async function main(argv: readonly string[]): Promise<number> {
  let log: Logger | undefined;
  try {
    const cmd = parseCommandLine(argv);
    if (cmd.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const config = loadConfig(cmd.overrides);
    log = createLogger(config.logLevel);
    const transport = new ApiServerTransport(loadKubeConfig(config));
    log.info({ server: transport.server(), node: config.nodeName, datapath: cmd.datapath, pinDir: config.pinDir }, 'starting');
    let datapath: BpfDatapath | undefined;
    let agent: { stop(): Promise<void> };
    if (cmd.datapath === 'bpf') {
      const seedFile = new CompileSeedFile(join(config.stateDir, COMPILE_SEED_FILE));
      let seed: StoredSeed | undefined;
      try {
        seed = await seedFile.load();
      } catch (e) {
        // Not dangerous (the first round is diffed against the maps): ids are reassigned instead.
        log.warn({ err: asError(e), file: seedFile.path }, `compile seed ignored: ${asError(e).message}`);
      }
      log.info({ file: seedFile.path, identities: seed?.identityTable.byId.size ?? 0, rules: seed?.ruleTable.byId.size ?? 0 },
        seed !== undefined ? 'compile seed loaded: ids kept from the previous run' : 'no compile seed: ids start afresh');
      const keeper = new SeedKeeper(seedFile, log, seed);
      try {
        datapath = openBpfDatapath({ pinDir: config.pinDir, mapSizes: config.mapSizes }, {
          ...(seed !== undefined ? { seed } : {}),
          onApplied: (compiled) => keeper.applied(compiled),
          conntrack: config.conntrack,
          hostRouting: config.hostRouting,
          lb: config.lb,
          ...(config.routing !== undefined ? { routing: { config: config.routing, port: rtnlNodeNetwork(config.pinDir) } } : {}),
        });
      } catch (e) {
        throw new Error(`--datapath bpf: cannot open or create the maps in ${config.pinDir}: ${asError(e).message}`, { cause: e });
      }
      if (datapath.retiredPinsRemoved.length > 0) log.info({ pins: datapath.retiredPinsRemoved }, 'removed the pins of replaced map layouts');
      const hostSockets = applyHostSockets(config.pinDir, config.lb);
      // Its UDP sockets whose backend leaves a Service are closed by the load balancer's owner (their connect() chose it).
      const hostUdp = hostSockets.state === 'attached' ? new HostUdpSockets(config.pinDir) : undefined;
      datapath.lbOwner.useHostSockets(hostUdp);
      if (hostSockets.state === 'attached') log.info({ cgroup: hostSockets.cgroup }, `the node's own sockets reach Services (socket load balancer on ${hostSockets.cgroup})`);
      else if (hostSockets.state === 'off') log.info({ removed: hostSockets.removed }, `the node's own sockets are not load-balanced: ${hostSockets.why}`);
      else log.warn({}, `the node's own sockets (host-network pods) cannot reach Services: ${hostSockets.why}`);
      const bpf = new Agent({ config, log, transport, datapath, stats: datapath, flows: datapath });
      agent = { stop: async () => {
        await bpf.stop();
        hostUdp?.close();
        await keeper.flush();
      } };
      await bpf.start();
    } else {
      const none = new Agent({ config, log, transport, datapath: dryRunDatapath });
      agent = none;
      await none.start();
    }
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    log.info({ signal }, `${signal}: stopping`);
    await agent.stop();
    datapath?.close();
    return 0;
  } catch (e) {
    const err = asError(e);
    const code = e instanceof AgentError && e.code === 'invalid-config' ? 2 : 1;
    if (log !== undefined) log.fatal({ err, field: e instanceof AgentError ? e.field : undefined }, err.message);
    process.stderr.write(`sluice-agent: ${err.message}\n`);
    if (code === 2) process.stderr.write('run sluice-agent --help for the flags\n');
    return code;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`sluice-agent: ${asError(e).message}\n`);
    process.exit(1);
  },
);
