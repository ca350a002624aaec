/**
 * The Service acceptance checks (test/lb/helpers/acceptance.ts) against
 * Sluice's load balancer on a one-node cluster lab: every backend and client
 * on the node, NodePort entering it.
 */
import { acceptanceSuite } from './helpers/acceptance.js';

acceptanceSuite('sluice', 1);
