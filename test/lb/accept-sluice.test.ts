/**
 * The Service acceptance checks (test/lb/helpers/acceptance.ts) against
 * Sluice's load balancer: the agents' maps and the pod and fabric programs
 * (bpf/lib/lb.h, nat.h, lb_external.h), on a two-node cluster lab.
 */
import { acceptanceSuite } from './helpers/acceptance.js';

acceptanceSuite('sluice');
