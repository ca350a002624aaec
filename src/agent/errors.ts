/**
 * Agent errors as data: a code callers branch on, the field or object at
 * fault when there is one, and a message that says what to do. Config and
 * endpoint-API validation errors name the field (`mapSizes.policy`,
 * `hostIfindex`), so a person fixes the input in one round.
 */

export type AgentErrorCode =
  | 'invalid-config' // a config file or flag value is wrong; `field` names it
  | 'invalid-argument' // an endpoint API request is wrong; `field` names it
  | 'not-found' // an endpoint that is not registered
  | 'conflict' // e.g. an IP already registered to another endpoint
  | 'exhausted' // no endpoint id left
  | 'unavailable' // not ready yet, or the datapath did not take the change in time
  | 'state-corrupt' // the persisted endpoint state cannot be read back
  | 'kube-api' // the API server answered with an error status
  | 'io'; // a file or socket operation failed

export class AgentError extends Error {
  override readonly name = 'AgentError';
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    /** The config key or request field at fault ("mapSizes.policy", "ip"). */
    readonly field?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export { asError, errnoCode } from '../common/errors.js';
