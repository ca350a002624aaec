/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one definition of every layout shared between the datapath and the
 * control plane: map keys and values, the ring-buffer event, drop reasons.
 *
 * TypeScript never re-declares these. scripts/gen-abi.mjs reads the BTF of
 * build/bpf/abi.o (compiled from bpf/abi.c, which references every type
 * below) and writes src/datapath/generated/abi.ts; a test regenerates it and
 * fails on drift.
 *
 * Rules:
 *  - fixed-width types only; fields holding wire-order data use the __be16 /
 *    __be32 typedefs, which the generator encodes big-endian;
 *  - padding is explicit (named pad*) and always zero, so hash keys compare
 *    byte-for-byte;
 *  - a layout change bumps the map's pin name suffix (_v2 ...), never reuses
 *    an old pin with a new layout.
 */
#ifndef SLUICE_ABI_H
#define SLUICE_ABI_H

#include <linux/types.h>

/* Reserved identities. Allocated identities start at SLUICE_IDENTITY_FIRST. */
enum sluice_identity_reserved {
	SLUICE_IDENTITY_UNKNOWN = 0,
	SLUICE_IDENTITY_HOST = 1,
	SLUICE_IDENTITY_WORLD = 2, /* any address that is not in the ipcache */
	SLUICE_IDENTITY_FIRST = 256,
};

/*
 * IP protocol numbers (IANA; the kernel's IPPROTO_*, which bpf/abi.c checks
 * these equal) of the protocols Sluice names: the one protocol table of the
 * control plane (src/policy/protocols.ts), used wherever a number meets a name.
 */
enum sluice_ip_proto {
	SLUICE_IPPROTO_ICMP = 1,
	SLUICE_IPPROTO_TCP = 6,
	SLUICE_IPPROTO_UDP = 17,
	SLUICE_IPPROTO_SCTP = 132,
};

/* Traffic direction, seen from the local endpoint. */
enum sluice_direction {
	SLUICE_DIR_INGRESS = 0, /* towards the pod: tc egress of the host veth */
	SLUICE_DIR_EGRESS = 1,  /* from the pod: tc ingress of the host veth */
	SLUICE_DIR_MAX = 2,
};

/*
 * Why a packet was dropped. 0 means "not dropped" so that one enum serves the
 * metrics index, the event and the flow API. Values are stable: append only.
 */
enum sluice_drop_reason {
	SLUICE_DROP_NONE = 0,
	SLUICE_DROP_POLICY_DENIED = 1,   /* isolated direction, no ALLOW entry matched */
	SLUICE_DROP_INVALID_L2 = 2,      /* ethernet header truncated */
	SLUICE_DROP_INVALID_IP = 3,      /* IPv4 header truncated or malformed */
	SLUICE_DROP_INVALID_L4 = 4,      /* TCP/UDP/ICMP header truncated */
	SLUICE_DROP_UNSUPPORTED_L3 = 5,  /* neither IPv4 nor ARP (IPv6 comes later) */
	SLUICE_DROP_SPOOFED_SOURCE = 6,  /* from-pod packet whose source is not the pod */
	SLUICE_DROP_ENDPOINT_UNKNOWN = 7, /* no sl_endpoints_v2 entry for the program's endpoint */
	SLUICE_DROP_CT_INVALID = 8,      /* TCP flags no stack sends (SYN+FIN, none, ...) */
	SLUICE_DROP_FRAG_UNKNOWN = 9,    /* later fragment whose first fragment was not seen */
	SLUICE_DROP_INTERFACE_UNKNOWN = 10, /* node-shared lxc program on an interface without an sl_lxc_v1 entry */
	SLUICE_DROP_POLICY_INCOMPLETE = 11, /* the node could not write the endpoint's whole policy (SLUICE_EP_F_POLICY_INCOMPLETE) */
	SLUICE_DROP_NODE_SPOOFED_SOURCE = 12, /* from another node (bpf/host.c), for a local pod, with a local pod's source */
	SLUICE_DROP_SERVICE_NO_BACKEND = 13, /* a Service frontend without a usable backend here, flagged drop (SLUICE_LB_SVC_F_EMPTY_DROP: Local traffic policy, none local) */
	SLUICE_DROP_SERVICE_REJECTED = 14,  /* ... without any usable backend: answered with a TCP RST / ICMP port unreachable (the original is consumed) */
	SLUICE_DROP_SERVICE_BACKEND_UNKNOWN = 15, /* a Service's table names a backend id sl_lb_be_v1 does not have */
	SLUICE_DROP_NAT_UNKNOWN = 16,       /* to the hairpin address (SLUICE_LB_HAIRPIN_ADDR) without a tracked hairpin connection */
	SLUICE_DROP_NAT_FAILED = 17,        /* rewriting the packet for a NAT (or building a reject) failed */
	SLUICE_DROP_NAT_NO_PORT = 18,       /* external traffic to masquerade: no free node port for it (bpf/host.c) */
	SLUICE_DROP_REASON_MAX = 64,
};

/* What the datapath did with a packet. */
enum sluice_verdict {
	SLUICE_VERDICT_FORWARDED = 1,
	SLUICE_VERDICT_DROPPED = 2,
};

/* Ring-buffer event types. */
enum sluice_event_type {
	SLUICE_EVENT_DROP = 1,
	SLUICE_EVENT_TRACE = 2, /* an allowed packet, when tracing is on */
};

/* Bits of sluice_event.flags. */
enum sluice_event_flags {
	SLUICE_EVENT_F_FRAGMENT = 1,    /* IPv4 fragment (MF set or offset != 0) */
	SLUICE_EVENT_F_LATER_FRAG = 2,  /* not the first fragment: ports are the first's (sl_frag_v1) */
	SLUICE_EVENT_F_IP_OPTIONS = 4,  /* IPv4 header longer than 20 bytes */
	/* Conntrack's view of the packet (bpf/lib/conntrack.h); one of NEW, ESTABLISHED, REPLY, RELATED. */
	SLUICE_EVENT_F_CT_NEW = 8,          /* no tracked connection: policy decided the packet */
	SLUICE_EVENT_F_CT_ESTABLISHED = 16, /* a tracked connection, in its original direction */
	SLUICE_EVENT_F_CT_REPLY = 32,       /* a tracked connection, in the reply direction */
	SLUICE_EVENT_F_CT_RECHECKED = 64,   /* the endpoint's policy changed: re-checked */
	SLUICE_EVENT_F_CT_RELATED = 128,    /* an ICMP error about a tracked connection */
	SLUICE_EVENT_F_TCP_FLAGS_NEW = 256, /* a tracked TCP packet with a flag its connection had not shown yet */
	/*
	 * Load balancing (bpf/lib/lb.h): the packet was sent to a Service
	 * frontend and translated to a backend; daddr/dport of the event are
	 * the backend's (what policy judged). On a reply: its source was the
	 * backend and is rewritten to the frontend after the event's view.
	 */
	SLUICE_EVENT_F_SERVICE = 512,
};

/* Bits of sluice_global_config.flags. */
enum sluice_config_flags {
	SLUICE_CFG_NONE = 0,
	SLUICE_CFG_TRACE_ALLOWED = 1, /* emit a TRACE event for every allowed packet */
	SLUICE_CFG_TRACE_NEW = 2,     /* ... for every allowed packet policy decided (CT_NEW) */
	SLUICE_CFG_TRACE_TCP_FLAGS = 4, /* ... for every tracked TCP packet with a new flag (TCP_FLAGS_NEW): SYN-ACK, first data, FIN, RST */
	SLUICE_CFG_BPF_HOST_ROUTING = 8, /* send allowed packets for pods on by the programs, past the node's stack (bpf/lib/host-routing.h) */
};

/*
 * ipcache: LPM trie, IPv4 address or CIDR -> identity. prefixlen counts the
 * bits of addr that matter (0..32); it must come first for the LPM trie.
 */
struct ipcache_key {
	__u32 prefixlen;
	__be32 addr;
};

struct ipcache_entry {
	__u32 identity;
	__u32 flags; /* reserved, zero */
};

/*
 * The datapath allows on ALLOW and drops on any other action (fail closed: a
 * corrupt or newer entry must not open a hole). The compiler writes ALLOW only.
 */
enum sluice_policy_action {
	SLUICE_POLICY_ALLOW = 1,
	SLUICE_POLICY_DENY = 2,
};

/* Value of sl_policy_v3. */
struct policy_entry {
	__u8 action; /* enum sluice_policy_action */
	__u8 pad0;
	__u16 pad1;
	__u32 rule_id; /* the control plane's handle for "which rule did this" */
};

/*
 * Port classes: how much of the destination port a policy entry matches,
 * stored in policy_key.port_prefixlen.
 *  - 0..SLUICE_POLICY_PORT_FULL: the first port_prefixlen bits of dport, of
 *    one protocol (TCP/UDP/SCTP). 0 = every port of it (`protocol` without a
 *    port), 16 = one port, in between = one aligned block of an endPort range;
 *  - SLUICE_POLICY_NO_PORTS: a rule without ports: every protocol and port,
 *    ICMP included; protocol and dport are 0 in the key. No port can have
 *    17 prefix bits, so the value cannot collide with a port class.
 * Class c is bit (1 << c) of endpoint_entry.*_policy_classes.
 */
enum sluice_policy_class {
	SLUICE_POLICY_PORT_FULL = 16, /* dport matched in full: the most specific class */
	SLUICE_POLICY_NO_PORTS = 17,  /* a rule without ports: the least specific */
	SLUICE_POLICY_CLASSES = 18,   /* number of classes (bits used in a class mask) */
};

/*
 * policy_v3 (NetworkPolicy enforcement): hash sl_policy_v3, one for all
 * endpoints, exact keys. The datapath tries, for remote_identity = the
 * peer's identity and then 0 ("any peer", a rule whose from/to is omitted),
 * each class set in the endpoint's mask for the direction from the most
 * specific (16 port bits) down to 0 bits and then NO_PORTS, with dport
 * masked to the class; the first entry found decides (bpf/lib/policy.h).
 * Protocols without ports (ICMP, ...) try NO_PORTS only. That is the order
 * of a longest-prefix match, so the most specific entry and its rule_id
 * decide, but the cost depends on the endpoint's classes, not on how many
 * entries the map holds. Isolation lives in sl_endpoints_v2: only an
 * isolated direction consults this map, and there a miss drops
 * (POLICY_DENIED).
 */
struct policy_key {
	__u32 endpoint_id;
	__u32 remote_identity; /* 0 = any peer */
	__u8 direction;        /* enum sluice_direction */
	__u8 protocol;         /* SLUICE_IPPROTO_TCP / UDP / SCTP; 0 for SLUICE_POLICY_NO_PORTS */
	__u8 port_prefixlen;   /* enum sluice_policy_class: 0..16 port bits, or NO_PORTS */
	__u8 pad0;
	__be16 dport;          /* the first port_prefixlen bits of the port, the rest zero */
	__u16 pad1;
};

/* The value is struct policy_entry (action ALLOW; rule_id names the rule). */

/* Bits of endpoint_entry.flags. */
enum sluice_endpoint_flags {
	SLUICE_EP_F_NONE = 0,
	SLUICE_EP_F_INGRESS_ISOLATED = 1, /* some policy selects it for Ingress */
	SLUICE_EP_F_EGRESS_ISOLATED = 2,  /* some policy selects it for Egress */
	/*
	 * The agent could not write the endpoint's policy (a full map, or any
	 * other refused write): every policy decision of the endpoint, both
	 * directions, new connections and re-checks, drops with
	 * SLUICE_DROP_POLICY_INCOMPLETE, whatever the isolation bits and the
	 * entries say. Set together with a policy_revision bump, so that
	 * established connections are re-checked (and dropped) too; cleared by
	 * the next apply that writes the endpoint's policy completely.
	 */
	SLUICE_EP_F_POLICY_INCOMPLETE = 4,
};

/*
 * endpoints: hash sl_endpoints_v2, endpoint_id (__u32) -> endpoint_entry.
 * Written before the pod's interface comes up; a packet of an endpoint
 * without an entry is dropped (fail closed).
 *
 * The class masks say which port classes (enum sluice_policy_class) the
 * endpoint's sl_policy_v3 entries use per direction, so that a packet only
 * looks up classes that can hit. A superset is always correct (one more
 * miss); a missing bit hides that class's entries, and since the compiler
 * writes only ALLOWs, hiding one can only deny more. The control plane therefore widens a mask no earlier
 * than the entries it covers are written and narrows it no later than they
 * are deleted (src/policy/apply-plan.ts).
 */
struct endpoint_entry {
	__u32 flags;                  /* enum sluice_endpoint_flags */
	__u32 policy_revision;        /* bumped whenever the endpoint's policy changes */
	__u32 ingress_policy_classes; /* bit c: an INGRESS entry of port class c exists */
	__u32 egress_policy_classes;  /* bit c: an EGRESS entry of port class c exists */
};

/*
 * conntrack: LRU hash sl_ct_v2, one entry per connection per endpoint
 * (bpf/lib/conntrack.h). The key is the connection as the endpoint sees it,
 * not as one packet carries it: local = the endpoint's side, remote = the
 * peer's, so both directions of a connection find the same entry with one
 * lookup, and the two endpoints of a pod-to-pod connection on one node (the
 * client's egress, the server's ingress) keep separate entries.
 */
struct ct_key {
	__u32 endpoint_id;
	__be32 local_addr;
	__be32 remote_addr;
	__be16 local_port;  /* ICMP echo: the identifier when the endpoint pinged, else 0 */
	__be16 remote_port; /* ICMP echo: the identifier when the peer pinged, else 0 */
	__u8 protocol;
	__u8 pad0;
	__u16 pad1;
};

/*
 * A connection of a pod to a Service frontend has two entries
 * (bpf/lib/lb.h), told apart by their flags:
 *  - the pin (SLUICE_CT_F_SERVICE): keyed by the connection as the client
 *    sent it (remote = the frontend address and port), holding the backend
 *    it is pinned to (ct_entry.nat_addr/nat_port/backend_id). The same
 *    lookup that finds any other connection of the pod finds it, so an
 *    established packet that is not to a Service costs no load-balancer
 *    lookup. Only the client's from_container uses it; for everything
 *    else in conntrack.h it is not a connection (a miss);
 *  - the connection (SLUICE_CT_F_DNAT): the usual entry, keyed by the
 *    translated connection (remote = the backend), with the frontend in
 *    nat_addr/nat_port so that replies are translated back without a lookup.
 */

/* TCP progress of a tracked connection; it only moves forward. */
enum sluice_ct_tcp_state {
	SLUICE_CT_TCP_NONE = 0,        /* not TCP */
	SLUICE_CT_TCP_SYN_SENT = 1,    /* opening SYN seen, no reply yet */
	SLUICE_CT_TCP_ESTABLISHED = 2, /* a reply seen, or picked up mid-stream */
	SLUICE_CT_TCP_FIN_WAIT = 3,    /* one side sent FIN (half-closed) */
	SLUICE_CT_TCP_CLOSED = 4,      /* both sides sent FIN, or either sent RST */
};

/* Bits of ct_entry.flags. */
enum sluice_ct_flags {
	SLUICE_CT_F_NONE = 0,
	SLUICE_CT_F_REPLY_SEEN = 1, /* a packet in the reply direction passed */
	SLUICE_CT_F_FIN_ORIG = 2,   /* FIN from the side that opened the connection */
	SLUICE_CT_F_FIN_REPLY = 4,  /* FIN from the other side */
	/* CONN entry of a connection to a Service: replies' source becomes nat_addr:nat_port (the frontend). */
	SLUICE_CT_F_DNAT = 8,
	/*
	 * ... and the backend is the client itself (hairpin): the request's
	 * source was rewritten to SLUICE_LB_HAIRPIN_ADDR, the reply's
	 * destination is rewritten back to the client (bpf/lib/lb.h).
	 */
	SLUICE_CT_F_HAIRPIN = 16,
	/* A pin: the backend (nat_addr, nat_port, backend_id) of a pod's connection to a Service frontend (above). */
	SLUICE_CT_F_SERVICE = 32,
	/*
	 * A backend pod's connection from outside the node through a frontend
	 * (bpf/host.c): its replies leaving the pod are translated by the
	 * sl_lb_nat_v1 entry under their own tuple.
	 */
	SLUICE_CT_F_EXTERNAL = 64,
};

struct ct_entry {
	__u64 expires_ns;      /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) deadline; past it = a miss */
	__u32 policy_revision; /* endpoint_entry.policy_revision when policy last allowed it */
	__u32 rule_id;         /* the rule that allowed the original direction, 0 if none was needed */
	__u8 orig_direction;   /* enum sluice_direction of the packet that opened it */
	__u8 tcp_state;        /* enum sluice_ct_tcp_state */
	__u8 flags;            /* enum sluice_ct_flags */
	__u8 tcp_flags_seen;   /* TCP flag bits seen so far, both directions (reported once each: SLUICE_CFG_TRACE_TCP_FLAGS) */
	/*
	 * Address translation: a pin's (SLUICE_CT_F_SERVICE) backend (address,
	 * port, sl_lb_be_v1 id); a connection flagged SLUICE_CT_F_DNAT: the
	 * frontend the client addressed (backend_id as in its pin). Zero
	 * otherwise.
	 */
	__be32 nat_addr;
	__be16 nat_port;
	__u16 pad0;
	__u32 backend_id;
};

/*
 * Connection lifetimes, renewed by every packet of the connection. A 0 in
 * struct ct_config means the default below, so a never-written config map
 * (array elements start zeroed) gives the defaults.
 */
enum sluice_ct_default_ms {
	SLUICE_CT_DEFAULT_TCP_SYN_MS = 60000,            /* SYN_SENT */
	SLUICE_CT_DEFAULT_TCP_ESTABLISHED_MS = 21600000, /* ESTABLISHED: 6 h */
	SLUICE_CT_DEFAULT_TCP_FIN_MS = 120000,           /* FIN_WAIT */
	SLUICE_CT_DEFAULT_TCP_CLOSED_MS = 10000,         /* CLOSED: last ACKs, retransmits */
	SLUICE_CT_DEFAULT_UDP_MS = 60000,                /* UDP, SCTP, other protocols */
	SLUICE_CT_DEFAULT_ICMP_MS = 30000,               /* ICMP echo */
};

/* ct config: array sl_ct_cfg_v1 with one element; lifetimes in milliseconds. */
struct ct_config {
	__u32 tcp_syn_ms;
	__u32 tcp_established_ms;
	__u32 tcp_fin_ms;
	__u32 tcp_closed_ms;
	__u32 udp_ms;
	__u32 icmp_ms;
};

/*
 * fragments: LRU hash sl_frag_v1, one IPv4 datagram -> the L4 fields of its
 * first fragment, written when that fragment passes, read by the later ones
 * (which carry no L4 header). Lives until evicted.
 */
struct frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id; /* IPv4 identification */
	__u8 protocol;
	__u8 pad0;
};

struct frag_entry {
	__be16 sport;   /* as struct sluice_event reports them (ICMP: type, code) */
	__be16 dport;
	__be16 icmp_id; /* ICMP echo identifier, 0 otherwise */
	__u16 pad0;
};

/*
 * counters: per-CPU array sl_counters_v1 of counter_value, indexed by enum
 * sluice_counter: datapath events that are not packets (lost events, conntrack
 * and fragment bookkeeping), so that every drop and every gap stays explainable.
 */
enum sluice_counter {
	SLUICE_COUNTER_EVENTS_LOST = 0,       /* ring buffer full: an event was not emitted */
	SLUICE_COUNTER_CT_CREATED = 1,        /* conntrack entries written for new connections */
	SLUICE_COUNTER_CT_CREATE_FAILED = 2,  /* ... whose write failed (packet passed anyway) */
	SLUICE_COUNTER_CT_RECHECKED = 3,      /* policy re-checked after a revision change */
	SLUICE_COUNTER_CT_REVOKED = 4,        /* ... and no longer allowed: entry deleted */
	SLUICE_COUNTER_FRAG_TRACKED = 5,      /* first fragments remembered */
	SLUICE_COUNTER_FRAG_TRACK_FAILED = 6, /* ... whose write failed */
	SLUICE_COUNTER_LB_SELECTED = 7,       /* new connections to a Service given a backend (table or affinity) */
	SLUICE_COUNTER_LB_AFFINITY_HIT = 8,   /* ... of which by ClientIP affinity */
	SLUICE_COUNTER_LB_UDP_MOVED = 9,      /* pinned non-TCP flows whose backend left the Service: moved to a live one */
	SLUICE_COUNTER_LB_CT_FAILED = 10,     /* Service conntrack or affinity writes that failed (packet passed anyway) */
	SLUICE_COUNTER_LB_SOCK_SELECTED = 11, /* host sockets connecting or sending to a Service given a backend (bpf/sock.c) */
	SLUICE_COUNTER_LB_SOCK_REFUSED = 12,  /* ... refused: the Service has no usable backend (the call fails) */
	SLUICE_COUNTER_MAX = 16,              /* capacity: counters are appended below it */
};

struct counter_value {
	__u64 value;
};

/* metrics: per-CPU array indexed by metrics_index(direction, reason). */
struct metrics_value {
	__u64 packets;
	__u64 bytes;
};


/*
 * ---- Load balancing: Services without kube-proxy (bpf/lib/lb.h) ----
 *
 * A frontend is one address, port and protocol a Service answers on
 * (ClusterIP, each node address for a NodePort, externalIP, load-balancer
 * IP). A "service" below is one Service port (namespace/name, port name,
 * protocol), named by a service_id the agent allocates: its frontends share
 * its backends and its ClientIP affinity. Who writes what:
 *  - the agent (src/reconcile load-balancer owner): sl_lb_svc_v1,
 *    sl_lb_be_v1, sl_lb_tbl_v1 (whole inner tables, swapped atomically);
 *    it deletes affinity entries of a deleted service;
 *  - the datapath: sl_lb_aff_v1 and the conntrack entries (sl_ct_v2).
 * Order for a change: backends first, then tables, then frontends; remove in
 * the reverse order (frontend, table, backends). A packet never sees a
 * table naming a backend that is not written yet.
 */

/* Which program looks a frontend up (lb_svc_key.scope). */
enum sluice_lb_scope {
	/* Traffic of this node's pods (bpf/lxc.c from_container): every frontend kind. */
	SLUICE_LB_SCOPE_POD = 0,
	/* Traffic arriving from outside the node (bpf/host.c): NodePort, externalIPs, LB IPs. */
	SLUICE_LB_SCOPE_EXTERNAL = 1,
};

/* Which backend table of a service a frontend uses (lb_svc_entry.backend_set). */
enum sluice_lb_set {
	SLUICE_LB_SET_CLUSTER = 0, /* the cluster set (kube-proxy's cluster endpoints) */
	SLUICE_LB_SET_LOCAL = 1,   /* this node's endpoints (traffic policy Local) */
};

/* How a new connection picks its backend (lb_svc_entry.algorithm). */
enum sluice_lb_algorithm {
	SLUICE_LB_ALG_RANDOM = 1, /* a uniformly random element of the table */
	SLUICE_LB_ALG_MAGLEV = 2, /* the element at lb_flow_hash() mod the table's length (a Maglev table) */
};

/* Bits of lb_svc_entry.flags. */
enum sluice_lb_svc_flags {
	SLUICE_LB_SVC_F_NONE = 0,
	/*
	 * Without a usable backend (no table, or a table of length 0): drop
	 * (SLUICE_DROP_SERVICE_NO_BACKEND) instead of rejecting. Set when the
	 * Service has endpoints but the frontend's Local policy leaves none on
	 * this node, as kube-proxy does; clear: reject (TCP RST, ICMP port
	 * unreachable for the rest), the client sees ECONNREFUSED at once.
	 */
	SLUICE_LB_SVC_F_EMPTY_DROP = 1,
	/*
	 * Scope EXTERNAL: traffic from outside to this frontend gets the node's
	 * address as its source (a port of SLUICE_LB_SNAT_PORT_MIN..MAX), as
	 * kube-proxy masquerades externalTrafficPolicy Cluster; clear
	 * (externalTrafficPolicy Local): the backend sees the client's address.
	 */
	SLUICE_LB_SVC_F_MASQUERADE = 2,
};

/* Bits of lb_backend.flags. */
enum sluice_lb_backend_flags {
	SLUICE_LB_BE_F_NONE = 0,
	/*
	 * Serving but not selectable for new connections (terminating while
	 * Ready endpoints exist): its existing connections and UDP flows keep
	 * it, ClientIP affinity does not pick it.
	 */
	SLUICE_LB_BE_F_NOT_SELECTABLE = 1,
};

/*
 * The address pods' hairpin connections come from (a pod reaching itself
 * through its own Service): host order 169.254.42.1. The backend is the
 * client, so without a source translation the pod would receive a packet
 * from its own address, which the kernel drops as a martian. A link-local
 * address is never a pod's or a node's, is not routed off the node, and the
 * pod reaches it through its default route, i.e. its veth, where
 * from_container translates the reply back (bpf/lib/lb.h).
 */
enum sluice_lb_const {
	SLUICE_LB_CONST_NONE = 0,
	SLUICE_LB_HAIRPIN_ADDR = 0xa9fe2a01,
	/*
	 * Seed of lb_flow_hash() (bpf/lib/lb.h, mirrored by
	 * src/datapath/maps/lb-tables.ts lbFlowHash): MurmurHash3 rounds over
	 * the client address, (client port << 16 | frontend port) and the
	 * protocol. A Maglev service takes table slot hash mod M. The frontend
	 * address is left out so that every node picks the same backend for a
	 * flow whatever address it reached them on; the client port is 0 under
	 * ClientIP affinity.
	 */
	SLUICE_LB_HASH_SEED = 0x5eed1b,
	/*
	 * The node ports masqueraded external connections take
	 * (SLUICE_LB_SVC_F_MASQUERADE), above Linux's default ephemeral range
	 * (32768-60999), so that they do not meet the node's own connections.
	 */
	SLUICE_LB_SNAT_PORT_MIN = 61000,
	SLUICE_LB_SNAT_PORT_MAX = 65535,
};

/*
 * frontends: hash sl_lb_svc_v1, lb_svc_key -> lb_svc_entry, written by the
 * agent. The pod program looks up every IPv4 TCP/UDP/SCTP packet leaving a
 * pod by (daddr, dport, protocol, SLUICE_LB_SCOPE_POD) before conntrack and
 * policy: one hash lookup per packet whatever the number of Services. A
 * NodePort has one entry per node address. TCP and UDP on one port are two
 * frontends.
 */
struct lb_svc_key {
	__be32 addr;
	__be16 port;
	__u8 protocol; /* SLUICE_IPPROTO_TCP / UDP / SCTP */
	__u8 scope;    /* enum sluice_lb_scope */
};

struct lb_svc_entry {
	__u32 service_id;         /* the Service port: lb_backend.service_id, lb_table_key, lb_affinity_key */
	__u32 affinity_timeout_s; /* ClientIP affinity timeout in seconds; 0 = no affinity */
	__u8 backend_set;         /* enum sluice_lb_set: lb_table_key.backend_set of its table */
	__u8 algorithm;           /* enum sluice_lb_algorithm */
	__u8 flags;               /* enum sluice_lb_svc_flags */
	__u8 pad0;
};

/*
 * backends: hash sl_lb_be_v1, backend_id (__u32, never 0) -> lb_backend,
 * written by the agent. Holds every serving endpoint of each service,
 * selectable or not; an id names one endpoint of one service and is not
 * reused for another endpoint while connections may still name it (the
 * datapath checks service_id, address and port anyway). Deleting an entry
 * moves the service's UDP (and other non-TCP) flows pinned to it to a live
 * backend at their next packet (kube-proxy flushes their conntrack entries);
 * TCP connections keep their backend (kube-proxy leaves TCP alone).
 */
struct lb_backend {
	__be32 addr;
	__be16 port;
	__u8 flags; /* enum sluice_lb_backend_flags */
	__u8 pad0;
	__u32 service_id; /* the service it belongs to */
};

/*
 * backend tables: hash of maps sl_lb_tbl_v1, lb_table_key -> an inner
 * BPF_MAP_TYPE_ARRAY of __u32, created with BPF_F_INNER_MAP so each can
 * have its own length: element 0 = n, the number of elements that follow;
 * elements 1..n = backend ids. Random: n = the backends, each once.
 * Maglev: n = the table size M (a prime, default 16381), element 1 + s =
 * the backend of slot s. At most SLUICE_LB_TABLE_MAX_SLOTS elements.
 * The agent builds a whole new inner array and then replaces the outer
 * entry (one update: a packet sees the old table or the new one, never a
 * mix), and never writes an inner array that is in place. No entry, or
 * n = 0: the service has no usable backend (lb_svc_entry.flags decides).
 */
struct lb_table_key {
	__u32 service_id;
	__u8 backend_set; /* enum sluice_lb_set */
	__u8 pad0;
	__u16 pad1;
};

/*
 * ClientIP affinity: LRU hash sl_lb_aff_v1, written by the datapath. Per
 * service and client address, the backend of the last new connection and
 * when it was made (bpf_ktime_get_ns). A new connection within
 * affinity_timeout_s of last_used_ns takes that backend if it is still a
 * selectable backend of the service, and refreshes last_used_ns; otherwise
 * the table decides and the entry is rewritten.
 */
struct lb_affinity_key {
	__u32 service_id;
	__be32 client_addr;
};

struct lb_affinity_entry {
	__u64 last_used_ns;
	__u32 backend_id;
	__u32 pad0;
};

/* Which packets an lb_nat_entry translates (lb_nat_entry.role). */
enum sluice_lb_nat_role {
	SLUICE_LB_NAT_FORWARD = 1, /* from the client, as it arrives on the node's device */
	SLUICE_LB_NAT_REPLY = 2,   /* from the backend, as it leaves the backend */
};

/*
 * External connections: LRU hash sl_lb_nat_v1, written by the node-device
 * program (bpf/host.c) for traffic from outside the node to a frontend of
 * scope EXTERNAL. Two entries per connection, keyed by its two directions'
 * tuples as the packets carry them: FORWARD {client -> frontend} and REPLY
 * {backend -> client, or -> node address and port when masqueraded}, both
 * holding the whole translation. Lives as long as an established
 * connection of its protocol without packets (renewed by the forward
 * direction).
 */
struct lb_nat_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 pad0;
	__u16 pad1;
};

struct lb_nat_entry {
	__u64 expires_ns;       /* bpf_ktime_get_ns() deadline */
	__be32 client_addr;
	__be32 frontend_addr;
	__be32 backend_addr;
	__be16 client_port;
	__be16 frontend_port;
	__be16 backend_port;
	__be16 snat_port;       /* the node port the client was masqueraded to; 0: not masqueraded */
	__u32 backend_id;
	__u8 role;              /* enum sluice_lb_nat_role */
	__u8 pad0;
	__u16 pad1;
	__u32 ifindex;          /* the node device the client's packets arrive on: replies leave by it */
};

/*
 * Host sockets' Service connections: LRU hash sl_lb_sock_v1, written by the
 * socket programs (bpf/sock.c) when a socket of the node's own network
 * namespace connects or sends to a frontend and is given a backend instead.
 * Keyed by the socket (bpf_get_socket_cookie) and the backend it was given,
 * it holds the frontend, which recvmsg and getpeername report in place of
 * the backend: the socket only ever sees the frontend.
 */
struct lb_sock_key {
	__u64 cookie;
	__be32 backend_addr;
	__be16 backend_port;
	__u8 protocol;
	__u8 pad0;
};

struct lb_sock_entry {
	__be32 frontend_addr;
	__be16 frontend_port;
	__u16 pad0;
};

/*
 * Compiled-in capacities: max_entries of the maps in bpf/lib/ (bytes for the
 * ring buffer). A map created without a size of its own gets these; the
 * agent creates the maps it sizes (config mapSizes) at the configured size,
 * and a pinned map keeps the size it was created with. TypeScript reads them
 * from the generated ABI, never retyped.
 */
enum sluice_map_capacity {
	SLUICE_EVENTS_RING_BYTES = 1 << 20,            /* sl_events_v1: ~18k events of 56 bytes (+8 header) */
	SLUICE_IPCACHE_MAX_ENTRIES = 512 * 1024,       /* sl_ipcache_v1 and sl_iphost_v1 */
	SLUICE_POLICY_MAX_ENTRIES = 4 * 1024 * 1024,   /* sl_policy_v3 */
	SLUICE_ENDPOINTS_MAX_ENTRIES = 64 * 1024,      /* sl_endpoints_v2 */
	SLUICE_CT_MAX_ENTRIES = 256 * 1024,            /* sl_ct_v2 */
	SLUICE_FRAG_MAX_ENTRIES = 8192,                /* sl_frag_v1: datagrams in flight as fragments at once */
	SLUICE_LXC_IFACES_MAX_ENTRIES = 64 * 1024,     /* sl_lxc_v1 and sl_lxc_addr_v1 */
	SLUICE_NODE_ROUTES_MAX_ENTRIES = 16 * 1024,    /* sl_noderoute_v1: nodes of the cluster */
	SLUICE_METRICS_ENTRIES = SLUICE_DIR_MAX * SLUICE_DROP_REASON_MAX, /* sl_metrics_v1: one slot per (direction, reason) */
	SLUICE_LB_SVC_MAX_ENTRIES = 64 * 1024,         /* sl_lb_svc_v1: frontends (address, port, protocol, scope) */
	SLUICE_LB_BE_MAX_ENTRIES = 256 * 1024,         /* sl_lb_be_v1: backends of all Service ports */
	SLUICE_LB_TBL_MAX_ENTRIES = 64 * 1024,         /* sl_lb_tbl_v1: backend tables (two per Service port at most) */
	SLUICE_LB_AFF_MAX_ENTRIES = 256 * 1024,        /* sl_lb_aff_v1: (Service port, client) affinities */
	SLUICE_LB_TABLE_MAX_SLOTS = 131072,            /* an inner table's elements: the largest Maglev size (131071) + the header */
	SLUICE_LB_NAT_MAX_ENTRIES = 256 * 1024,        /* sl_lb_nat_v1: two per external connection */
	SLUICE_LB_SOCK_MAX_ENTRIES = 64 * 1024,        /* sl_lb_sock_v1: host sockets connected or sending to a Service */
};

/* config: array with one element. */
struct global_config {
	__u32 flags; /* enum sluice_config_flags */
	__u32 pad0;
};

/*
 * Who a program serves (bpf/lib/config.h): one program instance per node
 * finds this struct per packet in the hash sl_lxc_v1, __u32 ifindex (the
 * host veth the program is attached to) -> endpoint_config. Attaching a pod
 * only writes its entry. A miss drops (SLUICE_DROP_INTERFACE_UNKNOWN: fail
 * closed). endpoint_id 0 is never a valid entry.
 */
struct endpoint_config {
	__u32 endpoint_id;
	__be32 ipv4; /* the pod's address; 0 disables the source check */
};

/*
 * local addresses: hash sl_lxc_addr_v1, a local pod's IPv4 -> the host veth
 * that serves it: where bpf/lib/host-routing.h delivers a packet for a
 * local pod. Written by the owner of sl_lxc_v1, from the same endpoints. An
 * entry is used only while sl_lxc_v1 agrees (the ifindex's entry carries the
 * same address), so a stale one sends the packet to the node's stack, never
 * to another pod.
 */
struct lxc_address_key {
	__be32 addr;
};

struct lxc_address {
	__u32 ifindex; /* the host veth; its sl_lxc_v1 entry names the address */
};

/*
 * node routes: LPM trie sl_noderoute_v1, another node's podCIDR -> how
 * bpf/lib/host-routing.h sends a packet there: the same device and next hop
 * as the kernel route the node-routes owner installs for that podCIDR (it
 * writes both). prefixlen first, as the LPM trie needs.
 */
struct node_route_key {
	__u32 prefixlen;
	__be32 addr;
};

struct node_route {
	__u32 ifindex;    /* the fabric device (native) or the vxlan device */
	__be32 next_hop;  /* the peer's InternalIP (native), its podCIDR's network address (vxlan) */
	__u32 mtu;        /* the device's: longer non-GSO packets go to the stack */
};

/* One ring-buffer record. A later fragment carries its first fragment's
 * ports, or zeros when that is unknown (FRAG_UNKNOWN); for ICMP src_port
 * holds the type and dst_port the code. */
struct sluice_event {
	__u64 timestamp_ns; /* bpf_ktime_get_ns() */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 event_type;   /* enum sluice_event_type */
	__u8 verdict;      /* enum sluice_verdict */
	__u8 direction;    /* enum sluice_direction */
	__u32 src_identity;
	__u32 dst_identity;
	__u32 endpoint_id;
	__u32 ifindex;
	__u32 pkt_len;
	__u16 drop_reason; /* enum sluice_drop_reason */
	__u16 flags;       /* enum sluice_event_flags */
	__u32 rule_id;     /* policy_entry.rule_id that decided, 0 if none */
	__u8 tcp_flags;    /* TCP: the header's flag byte (FIN 0x01 … CWR 0x80); 0 otherwise and for later fragments */
	__u8 pad0;
	__u16 pad1;
};

#endif /* SLUICE_ABI_H */
