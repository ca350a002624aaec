// tc (clsact + cls_bpf direct-action) hooks through libbpf's bpf_tc_* API, on
// an interface given by name or ifindex, in our netns or one given by path.
//
// Every operation runs in three steps: enter the netns, do the netlink work
// and record any error as plain data, switch back; only then is a JS value or
// exception built.
#include "tc.h"

#include <bpf/libbpf.h>
#include <net/if.h>

#include <cerrno>
#include <functional>

#include "common.h"
#include "netns.h"

namespace sluice {

namespace {

struct IfRef {
  std::string ifname;
  int ifindex = 0;
  std::string netns;
};

IfRef ReadRef(const Napi::Value& v) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "interface ref must be an object");
  Napi::Object o = v.As<Napi::Object>();
  IfRef ref;
  ref.ifname = GetOptionalString(o.Get("ifname"), "ifname");
  if (!o.Get("ifindex").IsUndefined()) ref.ifindex = GetI32(o.Get("ifindex"), "ifindex");
  ref.netns = GetOptionalString(o.Get("netns"), "netns");
  if (ref.ifname.empty() && ref.ifindex <= 0) {
    throw Napi::TypeError::New(v.Env(), "interface ref needs ifname or a positive ifindex");
  }
  return ref;
}

bpf_tc_attach_point ReadDirection(const Napi::Value& v) {
  std::string dir = GetString(v, "direction");
  if (dir == "ingress") return BPF_TC_INGRESS;
  if (dir == "egress") return BPF_TC_EGRESS;
  throw Napi::TypeError::New(v.Env(), "direction must be 'ingress' or 'egress', got '" + dir + "'");
}

std::string Where(const IfRef& ref, int ifindex) {
  std::string s = ref.ifname.empty() ? "ifindex " + std::to_string(ifindex)
                                     : "interface '" + ref.ifname + "'" +
                                           (ifindex > 0 ? " (ifindex " + std::to_string(ifindex) + ")" : "");
  return s + (ref.netns.empty() ? " in the current netns" : " in netns " + ref.netns);
}

// handle != 0 and priority in 1..65535. Checked here because the kernel
// answers EINVAL both for a bad (handle, priority) and for "no clsact qdisc /
// no filter chain", and query/detach treat the latter as "nothing attached":
// with valid arguments, EINVAL can only mean the latter.
struct Slot {
  uint32_t handle;
  uint32_t priority;
};

Slot ReadSlot(const Napi::Value& handle_v, const Napi::Value& priority_v) {
  Slot s{GetU32(handle_v, "handle"), GetU32(priority_v, "priority")};
  if (s.handle == 0) throw Napi::RangeError::New(handle_v.Env(), "tc handle must be non-zero");
  if (s.priority == 0 || s.priority > 0xffff) {
    throw Napi::RangeError::New(priority_v.Env(), "tc priority must be in 1..65535");
  }
  return s;
}

struct Outcome {
  std::optional<ErrorInfo> error;
  int ifindex = 0;
  uint32_t prog_id = 0;
  bool found = false;  // created / detached / attached, per operation
};

// Body: does the libbpf call for a resolved ifindex; returns 0 or -errno.
using Body = std::function<int(int ifindex, Outcome& out)>;

Outcome Run(const IfRef& ref, const char* op, const std::string& what, const Body& body) {
  Outcome out;
  LogCapture capture;
  NetnsScope ns(ref.netns, op);
  if (ns.Error()) {
    out.error = ns.Error();
    out.error->ifname = ref.ifname;
    return out;
  }
  int ifindex = ref.ifindex;
  if (!ref.ifname.empty()) {
    // Names are per netns: resolve after entering it.
    ifindex = static_cast<int>(if_nametoindex(ref.ifname.c_str()));
    if (ifindex == 0 || (ref.ifindex > 0 && ref.ifindex != ifindex)) {
      ErrorInfo e{ifindex == 0 ? ENODEV : EINVAL, op};
      e.ifname = ref.ifname;
      e.netns = ref.netns;
      e.message = ifindex == 0 ? "interface '" + ref.ifname + "' not found" +
                                     (ref.netns.empty() ? " in the current netns" : " in netns " + ref.netns)
                               : Where(ref, ifindex) + " does not have the given ifindex " +
                                     std::to_string(ref.ifindex);
      out.error = e;
      return out;
    }
  }
  out.ifindex = ifindex;
  int err = body(ifindex, out);
  if (err < 0) {
    ErrorInfo e{-err, op};
    e.ifname = ref.ifname;
    e.netns = ref.netns;
    e.message = what + " on " + Where(ref, ifindex) + ": " + ErrnoText(-err);
    capture.AttachTo(e);
    out.error = e;
  }
  return out;
}

void ThrowIfError(Napi::Env env, const Outcome& out) {
  if (out.error) ThrowBpfError(env, *out.error);
}

// The clsact qdisc as libbpf addresses it: both attach points at once.
struct bpf_tc_hook ClsactHook(int ifindex) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
              .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
  return hook;
}

int CreateClsact(int ifindex, bool& created) {
  struct bpf_tc_hook hook = ClsactHook(ifindex);
  int err = bpf_tc_hook_create(&hook);
  created = err == 0;
  return err == -EEXIST ? 0 : err;
}

Napi::Value Attached(Napi::Env env, const Outcome& out) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("ifindex", out.ifindex);
  r.Set("progId", out.prog_id);
  return r;
}

// Detach and query address one filter slot, (ref, dir, handle, priority), and
// both read ENOENT (no such filter) and EINVAL (no clsact qdisc or filter
// chain; see ReadSlot) as "nothing there": out.found is false.
Outcome RunOnSlot(const Napi::CallbackInfo& info, const char* op, const std::string& what, bool query) {
  IfRef ref = ReadRef(info[0]);
  bpf_tc_attach_point dir = ReadDirection(info[1]);
  Slot slot = ReadSlot(info[2], info[3]);
  Outcome out = Run(ref, op, what, [&](int ifindex, Outcome& o) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = dir);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = slot.handle, .priority = slot.priority);
    int err = query ? bpf_tc_query(&hook, &opts) : bpf_tc_detach(&hook, &opts);
    o.found = err == 0;
    o.prog_id = opts.prog_id;
    return err == -ENOENT || err == -EINVAL ? 0 : err;
  });
  ThrowIfError(info.Env(), out);
  return out;
}

}  // namespace

// tcHookCreate(ref) → {ifindex, created}
Napi::Value TcHookCreate(const Napi::CallbackInfo& info) {
  IfRef ref = ReadRef(info[0]);
  Outcome out = Run(ref, "tc_hook_create", "create clsact qdisc",
                    [](int ifindex, Outcome& o) { return CreateClsact(ifindex, o.found); });
  ThrowIfError(info.Env(), out);
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("ifindex", out.ifindex);
  r.Set("created", out.found);
  return r;
}

// tcHookDestroy(ref) → true if a clsact qdisc was removed (with all filters).
Napi::Value TcHookDestroy(const Napi::CallbackInfo& info) {
  IfRef ref = ReadRef(info[0]);
  Outcome out = Run(ref, "tc_hook_destroy", "remove clsact qdisc", [](int ifindex, Outcome& o) {
    struct bpf_tc_hook hook = ClsactHook(ifindex);
    int err = bpf_tc_hook_destroy(&hook);
    o.found = err == 0;
    // No clsact qdisc: ENOENT, or EINVAL ("Invalid handle") once the link is
    // up. The request itself is fixed by libbpf, so EINVAL cannot be ours.
    return err == -ENOENT || err == -EINVAL ? 0 : err;
  });
  ThrowIfError(info.Env(), out);
  return Napi::Boolean::New(info.Env(), out.found);
}

// tcAttach(ref, dir, progFd, handle, priority, replace) → {ifindex, progId}.
// Creates the clsact qdisc first if missing. Without replace, an existing
// filter at (handle, priority) is an EEXIST error.
Napi::Value TcAttach(const Napi::CallbackInfo& info) {
  IfRef ref = ReadRef(info[0]);
  bpf_tc_attach_point dir = ReadDirection(info[1]);
  int prog_fd = GetI32(info[2], "progFd");
  Slot slot = ReadSlot(info[3], info[4]);
  bool replace = info[5].ToBoolean();
  Outcome out = Run(ref, "tc_attach", "attach tc program", [&](int ifindex, Outcome& o) {
    bool created = false;
    int err = CreateClsact(ifindex, created);
    if (err < 0) return err;
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = dir);
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = replace ? static_cast<__u32>(BPF_TC_F_REPLACE) : 0u,
                .handle = slot.handle, .priority = slot.priority);
    err = bpf_tc_attach(&hook, &opts);
    o.prog_id = opts.prog_id;
    return err;
  });
  ThrowIfError(info.Env(), out);
  return Attached(info.Env(), out);
}

// tcDetach(ref, dir, handle, priority) → true if a filter was removed.
Napi::Value TcDetach(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), RunOnSlot(info, "tc_detach", "detach tc program", false).found);
}

// tcQuery(ref, dir, handle, priority) → {ifindex, progId} or undefined.
Napi::Value TcQuery(const Napi::CallbackInfo& info) {
  Outcome out = RunOnSlot(info, "tc_query", "query tc program", true);
  return out.found ? Attached(info.Env(), out) : info.Env().Undefined();
}

}  // namespace sluice
