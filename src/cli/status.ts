/**
 * `sluice status`: the agent as an operator first asks about it — is it
 * healthy, how many flows per second, are events being lost, how full are
 * the maps. Flows come from the Observer API (ServerStatus); health, lost
 * events and map pressure from the agent's HTTP endpoint (/readyz,
 * /metrics) when it is known (--agent-http, or a cluster lab's).
 */
import { httpGet, type HttpResult } from '../lab/controlplane/readiness.js';
import { ObserverClient } from '../flow/server/client.js';

export interface AgentStatusReport {
  readonly server: string;
  readonly healthy: boolean;
  readonly ready?: string;
  readonly flows: { readonly held: number; readonly max: number; readonly seen: number; readonly ratePerSecond: number; readonly uptimeSeconds: number; readonly version: string } | { readonly error: string };
  readonly lostEvents: Readonly<Record<string, number>>;
  readonly mapPressurePercent: Readonly<Record<string, number>>;
}

/** Samples of one metric from Prometheus text, keyed by one label's value. */
export function metricByLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${name}\\{([^}]*)\\}\\s+(\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const l = new RegExp(`${label}="([^"]*)"`).exec(m[1] ?? '');
    if (l !== null) out[l[1] ?? ''] = (out[l[1] ?? ''] ?? 0) + Number(m[2]);
  }
  return out;
}

interface ServerStatusObject {
  num_flows?: number; max_flows?: number; seen_flows?: number; uptime_ns?: number; version?: string; flows_rate?: number;
}

/**
 * The agent's HTTP endpoint (/readyz, /metrics): "unix:/path" (a lab's agent serves on a unix socket) or
 * "http://host:port".
 */
async function agentHttp(base: string, path: string): Promise<{ status: number; body: string } | undefined> {
  if (base.startsWith('unix:')) {
    return httpGet({ url: `http://agent${path}`, socketPath: base.slice('unix:'.length), timeoutMs: 3000, maxBody: 16 << 20 }).catch(() => undefined);
  }
  return fetch(`${base.replace(/\/$/, '')}${path}`, { signal: AbortSignal.timeout(3000) })
    .then(async (r) => ({ status: r.status, body: await r.text() }))
    .catch(() => undefined);
}

export async function agentStatus(o: { server: string; agentHttp?: string }): Promise<AgentStatusReport> {
  const client = new ObserverClient({ server: o.server });
  let flows: AgentStatusReport['flows'];
  try {
    const s = await client.unary<ServerStatusObject>('ServerStatus');
    flows = {
      held: s.num_flows ?? 0, max: s.max_flows ?? 0, seen: s.seen_flows ?? 0,
      ratePerSecond: Math.round((s.flows_rate ?? 0) * 100) / 100, uptimeSeconds: Math.round((s.uptime_ns ?? 0) / 1e9), version: s.version ?? '',
    };
  } catch (e) {
    flows = { error: e instanceof Error ? e.message : String(e) };
  } finally {
    client.close();
  }
  let ready: HttpResult | undefined;
  let metrics: string | undefined;
  if (o.agentHttp !== undefined) {
    ready = await agentHttp(o.agentHttp, '/readyz');
    metrics = (await agentHttp(o.agentHttp, '/metrics'))?.body;
    ready ??= { status: 0, body: `no answer from ${o.agentHttp}` };
  }
  const healthy = !('error' in flows) && (ready === undefined || ready.status === 200);
  return {
    server: o.server,
    healthy,
    ...(ready !== undefined ? { ready: ready.status === 200 ? 'ready' : `not ready (${ready.status}): ${ready.body.trim().split('\n')[0] ?? ''}` } : {}),
    flows,
    lostEvents: metrics !== undefined ? metricByLabel(metrics, 'hubble_lost_events_total', 'source') : {},
    mapPressurePercent: metrics !== undefined ? metricByLabel(metrics, 'sluice_agent_map_pressure_percent', 'map') : {},
  };
}

export function formatAgentStatus(r: AgentStatusReport): string {
  const lines = [`agent: ${r.healthy ? 'healthy' : 'UNHEALTHY'}${r.ready !== undefined ? ` (${r.ready})` : ''}  flow API ${r.server}`];
  if ('error' in r.flows) lines.push(`flows: cannot reach the flow API: ${r.flows.error}`);
  else {
    const f = r.flows;
    lines.push(`flows: ${f.held}/${f.max} held, ${f.seen} seen, ${f.ratePerSecond} flows/s, up ${f.uptimeSeconds} s (${f.version})`);
  }
  const lost = Object.entries(r.lostEvents);
  lines.push(`lost events: ${lost.length === 0 ? 'none' : lost.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const maps = Object.entries(r.mapPressurePercent).sort((a, b) => b[1] - a[1]);
  if (maps.length > 0) lines.push(`map pressure: ${maps.map(([k, v]) => `${k} ${v.toFixed(1)}%`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}
