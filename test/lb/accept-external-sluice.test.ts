/**
 * The external-frontend acceptance checks (test/lb/helpers/acceptance-external.ts:
 * external IPs, load-balancer IPs, NodePort masquerade, healthCheckNodePort)
 * against Sluice: the agents' maps, the pod and fabric programs
 * (bpf/lib/lb.h, nat.h, lb_external.h) and the agents' health-check servers,
 * on a two-node cluster lab with native routing and again over VXLAN.
 */
import { externalAcceptanceSuite } from './helpers/acceptance-external.js';

externalAcceptanceSuite('sluice', 'native');
externalAcceptanceSuite('sluice', 'vxlan');
