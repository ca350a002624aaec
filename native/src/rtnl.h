// rtnetlink calls for the CNI's veth plumbing and the reads of CHECK and GC (see rtnl.cc).
#pragma once

#include <napi.h>

#include "common.h"

namespace sluice {

Napi::Value RtnlCreateVeth(const Napi::CallbackInfo& info);
void RtnlConfigurePod(const Napi::CallbackInfo& info);
Napi::Value RtnlLinkGet(const Napi::CallbackInfo& info);
Napi::Value RtnlLinkDel(const Napi::CallbackInfo& info);
Napi::Value RtnlLinkList(const Napi::CallbackInfo& info);
Napi::Value RtnlLinkListSync(const Napi::CallbackInfo& info);
Napi::Value RtnlPodView(const Napi::CallbackInfo& info);
Napi::Value RtnlRouteList(const Napi::CallbackInfo& info);
void RtnlRouteSet(const Napi::CallbackInfo& info);
Napi::Value RtnlRouteDel(const Napi::CallbackInfo& info);
void RtnlVxlanCreate(const Napi::CallbackInfo& info);
Napi::Value RtnlNeighList(const Napi::CallbackInfo& info);
void RtnlNeighSet(const Napi::CallbackInfo& info);
Napi::Value RtnlNeighDel(const Napi::CallbackInfo& info);

}  // namespace sluice
