// Closing sockets of the calling thread's network namespace through
// NETLINK_SOCK_DIAG (SOCK_DESTROY, CONFIG_INET_DIAG_DESTROY): what
// src/datapath/sock-lb.ts needs to end the node's connected UDP sockets whose
// Service backend is gone.
#pragma once

#include <napi.h>

namespace sluice {

// destroyUdpSockets(cookies: bigint[]) → how many of the namespace's connected
// IPv4 UDP sockets with one of these socket cookies it closed. Each is aborted
// (its owner's next receive fails with ECONNABORTED) and disconnected. A socket
// that closes meanwhile is not counted; anything else the kernel refuses
// throws a BpfError (op "sock_destroy", or "sock_diag" for the listing).
Napi::Value DestroyUdpSockets(const Napi::CallbackInfo& info);

}  // namespace sluice
