/**
 * The agent as the CNI plugin calls it: an EndpointPort (the agent's service
 * in-process, or the HTTP client in the Node plugin) whose failures become
 * CNI errors. No agent answering, or an agent that could not get the policy
 * into the maps in time, is "try again later" (11) — the runtime retries;
 * a refusal (conflict, invalid field, no endpoint id left) is 104 with the
 * agent's own message, which names the field or the other endpoint.
 */
import {
  EndpointError, type EndpointPort, type EndpointRecord, type EndpointSpec, type NodeInfo, type ReadinessReport,
} from '../endpoint/contract.js';
import { CniCode, CniError } from './errors.js';

/** No agent answered; `neverSent`: the connection itself failed, so the agent cannot have acted on the request. */
export class AgentUnreachable extends CniError {
  constructor(message: string, readonly neverSent: boolean) {
    super(CniCode.TRY_AGAIN_LATER, message);
  }
}

export class CniAgent {
  /** where: how to name the agent in messages (its socket). */
  constructor(private readonly port: EndpointPort, private readonly where: string) {}

  async register(spec: EndpointSpec): Promise<EndpointRecord> {
    return (await this.wrap('register the endpoint', () => this.port.register(spec))).endpoint;
  }

  get(containerId: string, ifname: string): Promise<EndpointRecord | undefined> {
    return this.wrap('look up the endpoint', () => this.port.get(containerId, ifname));
  }

  unregister(containerId: string, ifname: string): Promise<EndpointRecord | undefined> {
    return this.wrap('unregister the endpoint', () => this.port.unregister(containerId, ifname));
  }

  status(): Promise<ReadinessReport> {
    return this.wrap('ask for its status', () => this.port.status());
  }

  node(): Promise<NodeInfo> {
    return this.wrap('ask for the node\'s pod CIDRs', () => this.port.node());
  }

  private async wrap<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw this.translate(what, e);
    }
  }

  private translate(what: string, e: unknown): CniError {
    if (!(e instanceof EndpointError)) return new CniError(CniCode.INTERNAL, `cannot ${what}: ${(e as Error).message}`);
    switch (e.code) {
      case 'unreachable':
        return new AgentUnreachable(
          `sluice-agent is not reachable at ${this.where} (${e.message}); is the agent running on this node? Retry once it is.`, e.notSent);
      case 'unavailable':
        return new CniError(CniCode.TRY_AGAIN_LATER, `sluice-agent could not ${what} yet: ${e.message}`);
      case 'conflict':
      case 'invalid-argument':
      case 'exhausted':
        return new CniError(CniCode.AGENT_REJECTED, `sluice-agent refused to ${what}: ${e.message}`,
          e.problems !== undefined ? JSON.stringify(e.problems) : '');
      default:
        return new CniError(CniCode.INTERNAL, `sluice-agent failed to ${what} (${e.code}${e.status !== undefined ? `, HTTP ${e.status}` : ''}): ${e.message}`);
    }
  }
}
