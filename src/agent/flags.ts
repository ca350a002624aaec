/**
 * sluice-agent's command line → config overrides. Unknown flags and missing
 * values are errors that name the flag.
 */
import { parseArgs } from 'node:util';
import type { ConfigOverrides } from './config.js';
import { AgentError, asError } from './errors.js';

export const DATAPATH_MODES = ['bpf', 'none'] as const;
export type DatapathMode = (typeof DATAPATH_MODES)[number];

export interface CommandLine {
  readonly help: boolean;
  readonly overrides: ConfigOverrides;
  readonly datapath: DatapathMode;
}

export const USAGE = `usage: sluice-agent [flags]

  --config FILE            YAML or JSON settings (keys as in docs/agent.md); flags override it
  --kubeconfig FILE        API server credentials (default: $KUBECONFIG, else in-cluster)
  --in-cluster             use the pod's service account
  --node-name NAME         this node's Node name (default: $NODE_NAME)
  --pin-dir DIR            bpffs directory of the pinned maps (default /sys/fs/bpf/sluice)
  --state-dir DIR          endpoint registry state (default /var/run/sluice)
  --endpoint-socket PATH   unix socket of the endpoint API (default /var/run/sluice/agent.sock)
  --flows-socket PATH      unix socket of the flow API, Hubble's Observer (default /var/run/sluice/hubble.sock)
  --http-listen HOST:PORT  /healthz, /readyz and /metrics (default 127.0.0.1:9890)
  --log-level LEVEL        trace, debug, info, warn, error, fatal, silent (default info)
  --map-size NAME=N        map capacity, repeatable: ipcache, iphost, policy, endpoints, conntrack
  --datapath MODE          bpf (default) or none: watch, compile and serve endpoints without writing maps
  -h, --help
`;

export function parseCommandLine(argv: readonly string[]): CommandLine {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string' },
        kubeconfig: { type: 'string' },
        'in-cluster': { type: 'boolean' },
        'node-name': { type: 'string' },
        'pin-dir': { type: 'string' },
        'state-dir': { type: 'string' },
        'endpoint-socket': { type: 'string' },
        'flows-socket': { type: 'string' },
        'http-listen': { type: 'string' },
        'log-level': { type: 'string' },
        'map-size': { type: 'string', multiple: true },
        datapath: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new AgentError('invalid-config', asError(e).message);
  }
  const v = parsed.values;
  const datapath = v.datapath ?? 'bpf';
  if (!(DATAPATH_MODES as readonly string[]).includes(datapath)) {
    throw new AgentError('invalid-config', `--datapath: "${datapath}" is not one of ${DATAPATH_MODES.join(', ')}`, 'datapath');
  }
  const overrides: { -readonly [K in keyof ConfigOverrides]: ConfigOverrides[K] | undefined } = {
    configFile: v.config,
    kubeconfig: v.kubeconfig,
    inCluster: v['in-cluster'],
    nodeName: v['node-name'],
    pinDir: v['pin-dir'],
    stateDir: v['state-dir'],
    endpointSocket: v['endpoint-socket'],
    flowsSocket: v['flows-socket'],
    httpListen: v['http-listen'],
    logLevel: v['log-level'],
    mapSizes: v['map-size'],
  };
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, x]) => x !== undefined)) as ConfigOverrides;
  return { help: v.help === true, overrides: defined, datapath: DATAPATH_MODES.find((m) => m === datapath) ?? 'bpf' };
}
