/**
 * The agent's endpoint API as the CNI uses it, with its failures turned into
 * CNI errors: no agent answering, or an agent that could not get the policy
 * into the maps in time, is "try again later" (11) — the runtime retries;
 * a refusal (conflict, invalid field, no endpoint id left) is 104 with the
 * agent's own message, which names the field or the other endpoint.
 */
import { EndpointApiError, EndpointClient } from '../agent/endpoints/client.js';
import type { NodeInfo } from '../agent/endpoints/api.js';
import type { EndpointRecord, EndpointSpec } from '../agent/endpoints/types.js';
import type { ReadinessReport } from '../agent/readiness.js';
import { CniCode, CniError } from './errors.js';

/** No agent answered; `neverSent`: the connection itself failed, so the agent cannot have acted on the request. */
export class AgentUnreachable extends CniError {
  constructor(message: string, readonly neverSent: boolean) {
    super(CniCode.TRY_AGAIN_LATER, message);
  }
}

export class AgentPort {
  private readonly client: EndpointClient;

  constructor(readonly socket: string, timeoutMs: number) {
    this.client = new EndpointClient(socket, { timeoutMs });
  }

  register(spec: EndpointSpec): Promise<EndpointRecord> {
    return this.wrap('register the endpoint', async () => (await this.client.add(spec)).endpoint);
  }

  get(containerId: string, ifname: string): Promise<EndpointRecord | undefined> {
    return this.wrap('look up the endpoint', () => this.client.get(containerId, ifname));
  }

  unregister(containerId: string, ifname: string): Promise<EndpointRecord | undefined> {
    return this.wrap('unregister the endpoint', () => this.client.delete(containerId, ifname));
  }

  list(): Promise<EndpointRecord[]> {
    return this.wrap('list endpoints', () => this.client.list());
  }

  status(): Promise<ReadinessReport> {
    return this.wrap('ask for its status', () => this.client.status());
  }

  node(): Promise<NodeInfo> {
    return this.wrap('ask for the node\'s pod CIDRs', () => this.client.node());
  }

  private async wrap<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw this.translate(what, e);
    }
  }

  private translate(what: string, e: unknown): CniError {
    if (!(e instanceof EndpointApiError)) return new CniError(CniCode.INTERNAL, `cannot ${what}: ${(e as Error).message}`);
    switch (e.code) {
      case 'unreachable':
        return new AgentUnreachable(
          `sluice-agent is not reachable at ${this.socket} (${e.message}); is the agent running on this node? Retry once it is.`,
          /connect (ENOENT|ECONNREFUSED)/.test(e.message));
      case 'unavailable':
        return new CniError(CniCode.TRY_AGAIN_LATER, `sluice-agent could not ${what} yet: ${e.message}`);
      case 'conflict':
      case 'invalid-argument':
      case 'exhausted':
        return new CniError(CniCode.AGENT_REJECTED, `sluice-agent refused to ${what}: ${e.message}`,
          e.problems !== undefined ? JSON.stringify(e.problems) : '');
      default:
        return new CniError(CniCode.INTERNAL, `sluice-agent failed to ${what} (${e.code}, HTTP ${e.status}): ${e.message}`);
    }
  }
}
