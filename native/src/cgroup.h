// Cgroup socket hooks (BPF links on a cgroup v2 directory) and the calling
// thread's network namespace cookie: what src/datapath/sock-lb.ts needs to
// attach bpf/sock.c.
#pragma once

#include <napi.h>

namespace sluice {

// cgroupLinkCreate(progFd, cgroupPath, attachType) → fd of a new BPF link
// attaching the program to the cgroup. attachType: "connect4", "sendmsg4",
// "recvmsg4" or "getpeername4". The caller pins or closes it.
Napi::Value CgroupLinkCreate(const Napi::CallbackInfo& info);
// linkUpdate(linkFd, progFd): the link runs progFd from now on (atomic).
void LinkUpdate(const Napi::CallbackInfo& info);
// linkInfo(linkFd) → {progId, cgroupId} of a cgroup link.
Napi::Value LinkInfo(const Napi::CallbackInfo& info);
// netnsCookie() → the cookie (bigint) of the calling thread's network namespace (SO_NETNS_COOKIE).
Napi::Value NetnsCookie(const Napi::CallbackInfo& info);

}  // namespace sluice
