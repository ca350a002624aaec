/**
 * CNI errors as data: the spec's numeric code, a message a person can act on
 * and optional details. main.ts prints them as the spec's error object on
 * stdout (libcni's invoke reads stdout, not stderr) and exits non-zero.
 *
 * Codes 1-99 are the spec's; 100 and up are Sluice's own, each one cause.
 */

export const CniCode = {
  /** The config's cniVersion is not one this plugin speaks (or the command needs a newer one). */
  INCOMPATIBLE_VERSION: 1,
  /** A field this plugin does not support; the message names key and value. */
  UNSUPPORTED_FIELD: 2,
  /** The container is unknown: the runtime needs no cleanup for it. */
  UNKNOWN_CONTAINER: 3,
  /** A CNI_* variable is missing or invalid; the message names it. */
  INVALID_ENV: 4,
  IO: 5,
  /** stdin is not JSON (or not an object). */
  DECODE: 6,
  /** The network config is invalid; the message names the field. */
  INVALID_CONFIG: 7,
  /** Transient: the agent is not reachable or not ready. Retry. */
  TRY_AGAIN_LATER: 11,
  /** STATUS: cannot serve ADD now. */
  NOT_AVAILABLE: 50,
  /** STATUS: cannot serve ADD, and existing pods may have limited connectivity. */
  LIMITED_CONNECTIVITY: 51,

  /** An external tool (ip, nsenter) or the system failed unexpectedly; the message has its output. */
  INTERNAL: 100,
  /** No free address left in the node's pod CIDR. */
  ADDRESSES_EXHAUSTED: 101,
  /** CNI_IFNAME already exists in the container's netns (not ours). */
  INTERFACE_EXISTS: 102,
  /** CHECK found the attachment not as ADD left it; the message lists every difference. */
  CHECK_FAILED: 103,
  /** The agent refused the endpoint (conflict, invalid field, no endpoint id left). */
  AGENT_REJECTED: 104,
  /** Loading or attaching the BPF programs failed. */
  DATAPATH_FAILED: 105,
  /** No pod CIDR: neither ipam.podCIDRs nor the agent's Node object has one. */
  NO_POD_CIDR: 106,
} as const;

export type CniErrorCode = (typeof CniCode)[keyof typeof CniCode];

export class CniError extends Error {
  override readonly name = 'CniError';
  constructor(
    readonly code: CniErrorCode,
    message: string,
    readonly details = '',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
