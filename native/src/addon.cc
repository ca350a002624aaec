// Module entry: registers the classes and functions the TypeScript layer in
// src/datapath/ wraps. The addon is deliberately thin: it translates between
// JS values and libbpf calls and reports errors; every decision (fallbacks,
// defaults, validation of meaning) lives in TypeScript.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <napi.h>

#include <cerrno>

#include "cgroup.h"
#include "common.h"
#include "map.h"
#include "object.h"
#include "ringbuf.h"
#include "rtnl.h"
#include "sockdiag.h"
#include "tc.h"
#include "test_run.h"

namespace sluice {

// setErrorFactory(fn): fn(details) returns the Error to throw (a BpfError).
void SetErrorFactory(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "error factory must be a function");
  GetAddonData(info.Env()).errorFactory = Napi::Persistent(info[0].As<Napi::Function>());
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n <= 0) {
    ErrorInfo e{-n, "num_possible_cpus"};
    e.message = "libbpf_num_possible_cpus: " + ErrnoText(-n);
    ThrowBpfError(info.Env(), e);
  }
  return Napi::Number::New(info.Env(), n);
}

// objGet(path) → fd of a pinned object (the caller owns and closes it).
Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  std::string path = GetString(info[0], "path");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    int err = errno;
    ErrorInfo e{err, "obj_get"};
    e.path = path;
    e.message = "open pinned object " + path + ": " + ErrnoText(err);
    ThrowBpfError(info.Env(), e);
  }
  return Napi::Number::New(info.Env(), fd);
}

// objPin(fd, path): pins the object behind fd (a program, a map) at path on
// bpffs. The caller keeps its fd; EEXIST when path is taken.
void ObjPin(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string path = GetString(info[1], "path");
  if (bpf_obj_pin(fd, path.c_str()) != 0) {
    int err = errno;
    ErrorInfo e{err, "obj_pin"};
    e.path = path;
    e.message = "pin fd " + std::to_string(fd) + " at " + path + ": " + ErrnoText(err);
    ThrowBpfError(info.Env(), e);
  }
}

// mapCreate({type, name, keySize, valueSize, maxEntries, flags}) → fd of a new
// map the caller owns (e.g. an inner map it then places in a map of maps).
Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "mapCreate(spec): spec must be an object");
  Napi::Object spec = info[0].As<Napi::Object>();
  std::string name = GetString(spec.Get("name"), "name");
  uint32_t type = GetU32(spec.Get("type"), "type");
  uint32_t key_size = GetU32(spec.Get("keySize"), "keySize");
  uint32_t value_size = GetU32(spec.Get("valueSize"), "valueSize");
  uint32_t max_entries = GetU32(spec.Get("maxEntries"), "maxEntries");
  uint32_t flags = spec.Get("flags").IsUndefined() ? 0u : GetU32(spec.Get("flags"), "flags");
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
  int fd = bpf_map_create(static_cast<enum bpf_map_type>(type), name.c_str(), key_size, value_size, max_entries, &opts);
  if (fd < 0) {
    int err = errno;
    ErrorInfo e{err, "map_create"};
    e.message = "create map '" + name + "' (type " + std::to_string(type) + ", " + std::to_string(max_entries) +
                " entries): " + ErrnoText(err);
    ThrowBpfError(env, e);
  }
  return Napi::Number::New(env, fd);
}

// mapFdById(id) → fd of the map with that kernel id (the caller owns it):
// how user space opens the inner map a map of maps holds.
Napi::Value MapFdById(const Napi::CallbackInfo& info) {
  uint32_t id = GetU32(info[0], "id");
  int fd = bpf_map_get_fd_by_id(id);
  if (fd < 0) {
    int err = errno;
    ErrorInfo e{err, "map_fd_by_id"};
    e.message = "open map id " + std::to_string(id) + ": " + ErrnoText(err);
    ThrowBpfError(info.Env(), e);
  }
  return Napi::Number::New(info.Env(), fd);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrint();
  GetAddonData(env);
  exports.Set("setErrorFactory", Napi::Function::New<SetErrorFactory>(env, "setErrorFactory"));
  exports.Set("numPossibleCpus", Napi::Function::New<NumPossibleCpus>(env, "numPossibleCpus"));
  exports.Set("objGet", Napi::Function::New<ObjGet>(env, "objGet"));
  exports.Set("objPin", Napi::Function::New<ObjPin>(env, "objPin"));
  exports.Set("mapCreate", Napi::Function::New<MapCreate>(env, "mapCreate"));
  exports.Set("mapFdById", Napi::Function::New<MapFdById>(env, "mapFdById"));
  exports.Set("cgroupLinkCreate", Napi::Function::New<CgroupLinkCreate>(env, "cgroupLinkCreate"));
  exports.Set("linkUpdate", Napi::Function::New<LinkUpdate>(env, "linkUpdate"));
  exports.Set("linkInfo", Napi::Function::New<LinkInfo>(env, "linkInfo"));
  exports.Set("netnsCookie", Napi::Function::New<NetnsCookie>(env, "netnsCookie"));
  exports.Set("destroyUdpSockets", Napi::Function::New<DestroyUdpSockets>(env, "destroyUdpSockets"));
  exports.Set("BpfObject", BpfObject::Define(env));
  exports.Set("BpfMap", BpfMap::Define(env));
  exports.Set("RingBufferReader", RingBufferReader::Define(env));
  exports.Set("tcHookCreate", Napi::Function::New<TcHookCreate>(env, "tcHookCreate"));
  exports.Set("tcHookDestroy", Napi::Function::New<TcHookDestroy>(env, "tcHookDestroy"));
  exports.Set("tcAttach", Napi::Function::New<TcAttach>(env, "tcAttach"));
  exports.Set("tcDetach", Napi::Function::New<TcDetach>(env, "tcDetach"));
  exports.Set("tcQuery", Napi::Function::New<TcQuery>(env, "tcQuery"));
  exports.Set("testRun", Napi::Function::New<TestRun>(env, "testRun"));
  exports.Set("rtnlCreateVeth", Napi::Function::New<RtnlCreateVeth>(env, "rtnlCreateVeth"));
  exports.Set("rtnlConfigurePod", Napi::Function::New<RtnlConfigurePod>(env, "rtnlConfigurePod"));
  exports.Set("rtnlLinkGet", Napi::Function::New<RtnlLinkGet>(env, "rtnlLinkGet"));
  exports.Set("rtnlLinkDel", Napi::Function::New<RtnlLinkDel>(env, "rtnlLinkDel"));
  exports.Set("rtnlLinkList", Napi::Function::New<RtnlLinkList>(env, "rtnlLinkList"));
  exports.Set("rtnlLinkListSync", Napi::Function::New<RtnlLinkListSync>(env, "rtnlLinkListSync"));
  exports.Set("rtnlPodView", Napi::Function::New<RtnlPodView>(env, "rtnlPodView"));
  exports.Set("rtnlRouteList", Napi::Function::New<RtnlRouteList>(env, "rtnlRouteList"));
  exports.Set("rtnlRouteSet", Napi::Function::New<RtnlRouteSet>(env, "rtnlRouteSet"));
  exports.Set("rtnlRouteDel", Napi::Function::New<RtnlRouteDel>(env, "rtnlRouteDel"));
  exports.Set("rtnlVxlanCreate", Napi::Function::New<RtnlVxlanCreate>(env, "rtnlVxlanCreate"));
  exports.Set("rtnlNeighList", Napi::Function::New<RtnlNeighList>(env, "rtnlNeighList"));
  exports.Set("rtnlNeighSet", Napi::Function::New<RtnlNeighSet>(env, "rtnlNeighSet"));
  exports.Set("rtnlNeighDel", Napi::Function::New<RtnlNeighDel>(env, "rtnlNeighDel"));
  return exports;
}

}  // namespace sluice

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return sluice::Init(env, exports); }

NODE_API_MODULE(sluice_bpf, InitModule)
