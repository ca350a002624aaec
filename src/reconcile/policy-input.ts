/**
 * What the policy group's owners (endpoints, ipcache, policy) read from a
 * round's input: the compiled datapath state (src/policy/datapath-state.ts),
 * one compile shared by the three.
 */
import type { DatapathState } from '../policy/datapath-state.js';

export interface PolicyRoundInput {
  readonly datapath: DatapathState;
}
