/**
 * The agent's side of the endpoint contract (src/endpoint/contract.ts): the
 * EndpointPort over the registry and the sync loop. The plugin the agent
 * runs in-process for the C shim calls it directly; the endpoint API
 * (api.ts) serves the same calls over HTTP to the Node plugin. Both go
 * through here, so a registration is validated, logged and synced the same
 * way whichever transport brought it.
 *
 * A registration resolves only once the endpoint's policy is in the maps
 * (the pod's interface must not come up before), or rejects "unavailable"
 * after the apply timeout; the endpoint then stays registered, and the
 * CNI's DEL after a failed ADD removes it. Failures are EndpointErrors: the
 * registry's AgentErrors keep their code.
 */
import {
  EndpointError, invalidRequest, isEndpointErrorCode, validateEndpointSpec, type EndpointPort, type EndpointRecord, type EndpointSpec,
  type NodeInfo, type ReadinessReport, type RegisterResult,
} from '../../endpoint/contract.js';
import { AgentError, asError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { EndpointRegistry } from './registry.js';

export interface EndpointServiceDeps {
  readonly registry: EndpointRegistry;
  /** Requests a sync for a registry change; with wait, resolves when it is in the maps (rejects: unavailable). */
  readonly syncEndpoints: (reason: string, wait: boolean) => Promise<void>;
  readonly status: () => ReadinessReport;
  /** This node as the informer sees it; without it node() is not-found. */
  readonly node?: () => NodeInfo;
  readonly log: Logger;
}

export class EndpointService implements EndpointPort {
  constructor(private readonly deps: EndpointServiceDeps) {}

  register(spec: EndpointSpec): Promise<RegisterResult> {
    return this.registerBody(spec);
  }

  /** A registration request as it arrived (unvalidated): invalid-argument naming every field problem. */
  registerBody(body: unknown): Promise<RegisterResult> {
    return endpointErrors(async () => {
      const v = validateEndpointSpec(body);
      if (!v.ok) throw invalidRequest(v.problems);
      const result = await this.deps.registry.add(v.value);
      const e = result.endpoint;
      if (result.changed) {
        this.deps.log.info(
          { endpointId: e.endpointId, containerId: e.containerId, pod: `${e.podNamespace}/${e.podName}`, ip: e.ip },
          result.created ? 'endpoint registered' : 'endpoint updated',
        );
      }
      // Even an unchanged repeat waits: the first ADD may have timed out before its policy landed.
      await this.deps.syncEndpoints(result.created ? 'endpoint added' : 'endpoint re-added', true);
      return { endpoint: e, created: result.created };
    });
  }

  get(containerId: string, ifname: string): Promise<EndpointRecord | undefined> {
    return Promise.resolve(this.deps.registry.get(containerId, ifname));
  }

  unregister(containerId: string, ifname: string): Promise<EndpointRecord | undefined> {
    return endpointErrors(async () => {
      const removed = await this.deps.registry.delete(containerId, ifname);
      if (removed === undefined) return undefined;
      this.deps.log.info({ endpointId: removed.endpointId, containerId, pod: `${removed.podNamespace}/${removed.podName}` }, 'endpoint deleted');
      await this.deps.syncEndpoints('endpoint deleted', false);
      return removed;
    });
  }

  list(): Promise<EndpointRecord[]> {
    return Promise.resolve(this.deps.registry.list());
  }

  status(): Promise<ReadinessReport> {
    return Promise.resolve(this.deps.status());
  }

  node(): Promise<NodeInfo> {
    const node = this.deps.node;
    if (node === undefined) return Promise.reject(new EndpointError('not-found', 'this agent does not know its node (no node information configured)'));
    return Promise.resolve(node());
  }
}

/** Runs fn; anything it throws comes out as an EndpointError (an AgentError keeps its code where the contract has it). */
async function endpointErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toEndpointError(e);
  }
}

export function toEndpointError(e: unknown): EndpointError {
  if (e instanceof EndpointError) return e;
  if (e instanceof AgentError) {
    const details = { ...(e.field !== undefined ? { field: e.field } : {}), cause: e };
    return new EndpointError(isEndpointErrorCode(e.code) ? e.code : 'internal', e.message, details);
  }
  return new EndpointError('internal', asError(e).message, { cause: e });
}
