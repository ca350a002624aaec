/**
 * The Service acceptance checks (test/lb/helpers/acceptance.ts) against the
 * real kube-proxy in iptables mode on the same two-node cluster lab; the
 * agents run with Services off (lb.enabled false) and hostRouting kernel, so
 * every Service packet is kube-proxy's.
 */
import { acceptanceSuite } from './helpers/acceptance.js';

acceptanceSuite('kube-proxy-iptables');
