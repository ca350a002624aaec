/**
 * The external-frontend acceptance checks (test/lb/helpers/acceptance-external.ts)
 * against the real kube-proxy in nftables mode on the same two-node cluster lab,
 * with native routing and over VXLAN; the agents run with Services off
 * (lb.enabled false, so no health-check servers either) and hostRouting
 * kernel, so every Service packet and health check is kube-proxy's.
 */
import { externalAcceptanceSuite } from './helpers/acceptance-external.js';

externalAcceptanceSuite('kube-proxy-nftables', 'native');
externalAcceptanceSuite('kube-proxy-nftables', 'vxlan');
