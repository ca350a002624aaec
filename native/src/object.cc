// Open + load of a BPF object: pinned-map reuse through libbpf's pin_root_path,
// .rodata globals written between open and load, listing of maps/programs.
#include "object.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "common.h"

namespace sluice {

namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The internal map that backs DATASEC `sec`. libbpf 1.1 names it
// "<obj prefix>.rodata" (or ".rodata.x" for custom sections).
struct bpf_map* FindInternalMap(struct bpf_object* obj, const std::string& sec) {
  struct bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    if (bpf_map__is_internal(map) && EndsWith(bpf_map__name(map), sec)) return map;
  }
  return nullptr;
}

struct GlobalValue {
  std::string name;
  std::vector<uint8_t> bytes;
};

// Writes each global into the initial value of its .rodata map. Offsets and
// sizes come from the DATASEC in the object's BTF, which libbpf has already
// fixed up from the ELF symbol table during open.
std::optional<ErrorInfo> SetGlobals(struct bpf_object* obj, const std::string& path,
                                    const std::vector<GlobalValue>& globals) {
  if (globals.empty()) return std::nullopt;
  struct btf* btf = bpf_object__btf(obj);
  for (const auto& g : globals) {
    bool found = false;
    for (__u32 id = 1; btf != nullptr && id < btf__type_cnt(btf) && !found; id++) {
      const struct btf_type* t = btf__type_by_id(btf, id);
      if (!btf_is_datasec(t)) continue;
      std::string sec = btf__name_by_offset(btf, t->name_off);
      if (sec.rfind(".rodata", 0) != 0) continue;
      const struct btf_var_secinfo* vsi = btf_var_secinfos(t);
      for (__u16 i = 0; i < btf_vlen(t); i++, vsi++) {
        const struct btf_type* var = btf__type_by_id(btf, vsi->type);
        if (g.name != btf__name_by_offset(btf, var->name_off)) continue;
        found = true;
        if (g.bytes.size() != vsi->size) {
          ErrorInfo e{EINVAL, "set_global"};
          e.path = path;
          e.message = "global '" + g.name + "' is " + std::to_string(vsi->size) + " bytes in " + path +
                      ", got " + std::to_string(g.bytes.size());
          return e;
        }
        struct bpf_map* map = FindInternalMap(obj, sec);
        size_t size = 0;
        const void* current = map != nullptr ? bpf_map__initial_value(map, &size) : nullptr;
        if (current == nullptr || vsi->offset + vsi->size > size) {
          ErrorInfo e{ENOENT, "set_global"};
          e.path = path;
          e.message = "no map backs section " + sec + " of " + path + " (global '" + g.name + "')";
          return e;
        }
        std::vector<uint8_t> image(static_cast<const uint8_t*>(current),
                                   static_cast<const uint8_t*>(current) + size);
        std::memcpy(image.data() + vsi->offset, g.bytes.data(), g.bytes.size());
        int err = bpf_map__set_initial_value(map, image.data(), image.size());
        if (err != 0) {
          ErrorInfo e{-err, "set_global"};
          e.path = path;
          e.message = "set global '" + g.name + "' in " + path + ": " + ErrnoText(-err);
          return e;
        }
        break;
      }
    }
    if (!found) {
      ErrorInfo e{ENOENT, "set_global"};
      e.path = path;
      e.message = "global '" + g.name + "' is not a const volatile (.rodata) variable of " + path;
      return e;
    }
  }
  return std::nullopt;
}

std::vector<GlobalValue> ReadGlobals(const Napi::Value& v) {
  std::vector<GlobalValue> out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "globals must be an object of Buffers");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array names = o.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string name = names.Get(i).ToString().Utf8Value();
    Bytes b = GetBytes(o.Get(name), ("globals." + name).c_str());
    out.push_back(GlobalValue{name, std::vector<uint8_t>(b.data, b.data + b.length)});
  }
  return out;
}

}  // namespace

Napi::Function BpfObject::Define(Napi::Env env) {
  return DefineClass(env, "BpfObject",
                     {
                         InstanceMethod<&BpfObject::Maps>("maps"),
                         InstanceMethod<&BpfObject::Programs>("programs"),
                         InstanceMethod<&BpfObject::Close>("close"),
                     });
}

BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  Napi::Env env = info.Env();
  path_ = GetString(info[0], "path");
  std::string pin_root = GetOptionalString(info[1], "pinRoot");
  std::vector<GlobalValue> globals = ReadGlobals(info[2]);

  LogCapture capture;
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_root.empty() ? nullptr : pin_root.c_str());
  struct bpf_object* obj = bpf_object__open_file(path_.c_str(), &opts);
  if (obj == nullptr) {
    int err = errno;
    ErrorInfo e{err, "open"};
    e.path = path_;
    e.message = "open BPF object " + path_ + ": " + ErrnoText(err);
    capture.AttachTo(e);
    ThrowBpfError(env, e);
  }
  if (pin_root.empty()) {
    // libbpf would pin LIBBPF_PIN_BY_NAME maps under /sys/fs/bpf by default;
    // without a pin root we want a private load that shares nothing.
    struct bpf_map* map;
    bpf_object__for_each_map(map, obj) {
      if (bpf_map__pin_path(map) != nullptr) bpf_map__set_pin_path(map, nullptr);
    }
  }
  if (auto e = SetGlobals(obj, path_, globals)) {
    bpf_object__close(obj);
    ThrowBpfError(env, *e);
  }
  int err = bpf_object__load(obj);
  if (err != 0) {
    ErrorInfo e{-err, "load"};
    e.path = path_;
    e.message = "load BPF object " + path_ + ": " + ErrnoText(-err);
    capture.AttachTo(e);
    bpf_object__close(obj);
    ThrowBpfError(env, e);
  }
  obj_ = obj;
}

BpfObject::~BpfObject() {
  if (obj_ != nullptr) bpf_object__close(obj_);
}

Napi::Value BpfObject::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  if (obj_ == nullptr) return out;
  struct bpf_map* map;
  uint32_t i = 0;
  bpf_object__for_each_map(map, obj_) {
    Napi::Object m = Napi::Object::New(env);
    m.Set("name", bpf_map__name(map));
    m.Set("fd", bpf_map__fd(map));
    out.Set(i++, m);
  }
  return out;
}

Napi::Value BpfObject::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  if (obj_ == nullptr) return out;
  struct bpf_program* prog;
  uint32_t i = 0;
  bpf_object__for_each_program(prog, obj_) {
    int fd = bpf_program__fd(prog);
    struct bpf_prog_info pinfo;
    std::memset(&pinfo, 0, sizeof(pinfo));
    __u32 len = sizeof(pinfo);
    if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &pinfo, &len) != 0) pinfo.id = 0;
    Napi::Object p = Napi::Object::New(env);
    p.Set("name", bpf_program__name(prog));
    p.Set("section", bpf_program__section_name(prog));
    p.Set("fd", fd);
    p.Set("type", static_cast<uint32_t>(bpf_program__type(prog)));
    p.Set("id", pinfo.id);
    out.Set(i++, p);
  }
  return out;
}

void BpfObject::Close(const Napi::CallbackInfo&) {
  if (obj_ != nullptr) {
    bpf_object__close(obj_);
    obj_ = nullptr;
  }
}

}  // namespace sluice
