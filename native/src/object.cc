// Open + load of a BPF object: pinned-map reuse through libbpf's pin_root_path,
// .rodata globals and map sizes set between open and load, listing of
// maps/programs.
#include "object.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <unistd.h>

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

// Calls read(name, value, "what.name") for each property of an optional
// options object (undefined/null: none).
template <typename Read>
void ForEachNamed(const Napi::Value& v, const std::string& what, const char* expected, Read read) {
  if (v.IsUndefined() || v.IsNull()) return;
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), what + " must be an object of " + expected);
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array names = o.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string name = names.Get(i).ToString().Utf8Value();
    read(name, o.Get(name), what + "." + name);
  }
}

std::vector<GlobalValue> ReadGlobals(const Napi::Value& v) {
  std::vector<GlobalValue> out;
  ForEachNamed(v, "globals", "Buffers", [&](const std::string& name, const Napi::Value& value, const std::string& field) {
    Bytes b = GetBytes(value, field.c_str());
    out.push_back(GlobalValue{name, std::vector<uint8_t>(b.data, b.data + b.length)});
  });
  return out;
}

struct MaxEntries {
  std::string name;
  uint32_t entries;
};

// maxEntries: {[map name]: entries}. Values are checked in TypeScript too;
// this guards the boundary.
std::vector<MaxEntries> ReadMaxEntries(const Napi::Value& v) {
  std::vector<MaxEntries> out;
  ForEachNamed(v, "maxEntries", "numbers", [&](const std::string& name, const Napi::Value& value, const std::string& field) {
    uint32_t n = GetU32(value, field.c_str());
    if (n == 0) throw Napi::RangeError::New(v.Env(), field + " must be at least 1");
    out.push_back(MaxEntries{name, n});
  });
  return out;
}

std::string MapNames(struct bpf_object* obj) {
  std::string names;
  struct bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    if (bpf_map__is_internal(map)) continue;
    names += (names.empty() ? "" : ", ") + std::string(bpf_map__name(map));
  }
  return names;
}

// max_entries of the map pinned at path; nullopt when nothing is pinned there
// (the load creates it).
std::optional<uint32_t> PinnedMaxEntries(const char* path) {
  int fd = bpf_obj_get(path);
  if (fd < 0) return std::nullopt;
  struct bpf_map_info info;
  std::memset(&info, 0, sizeof(info));
  __u32 len = sizeof(info);
  int err = bpf_obj_get_info_by_fd(fd, &info, &len);
  close(fd);
  if (err != 0) return std::nullopt;  // not a map: libbpf's reuse check reports it
  return info.max_entries;
}

// Sets the requested sizes, then lines every map that is already pinned up
// with its pin: libbpf reuses a pin only when max_entries matches, and a pin
// keeps its size for life (recreating it would drop its entries). A pin of
// another size than requested is an error naming both sizes; a map without a
// request takes its pin's size, so a loader that does not know the node's
// sizes (the CNI) reuses what the agent created.
std::optional<ErrorInfo> SetMaxEntries(struct bpf_object* obj, const std::string& path,
                                       const std::vector<MaxEntries>& wanted) {
  auto error = [&](int err, const std::string& message) {
    ErrorInfo e{err, "max_entries"};
    e.path = path;
    e.message = message;
    return e;
  };
  for (const auto& w : wanted) {
    struct bpf_map* map = bpf_object__find_map_by_name(obj, w.name.c_str());
    if (map == nullptr || bpf_map__is_internal(map)) {
      return error(ENOENT, "maxEntries: no map '" + w.name + "' in " + path + " (has: " + MapNames(obj) + ")");
    }
    int err = bpf_map__set_max_entries(map, w.entries);
    if (err != 0) return error(-err, "set max_entries of map '" + w.name + "' in " + path + ": " + ErrnoText(-err));
  }
  struct bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    const char* pin = bpf_map__pin_path(map);
    if (pin == nullptr) continue;
    std::optional<uint32_t> pinned = PinnedMaxEntries(pin);
    if (!pinned || *pinned == bpf_map__max_entries(map)) continue;
    std::string name = bpf_map__name(map);
    bool requested = false;
    for (const auto& w : wanted) requested = requested || w.name == name;
    if (requested) {
      return error(EEXIST, "map '" + name + "' is pinned at " + pin + " with max_entries " + std::to_string(*pinned) +
                               ", wanted " + std::to_string(bpf_map__max_entries(map)) +
                               ": a pinned map keeps its size; remove the pin (losing its entries) to resize it");
    }
    int err = bpf_map__set_max_entries(map, *pinned);
    if (err != 0) return error(-err, "set max_entries of map '" + name + "' in " + path + ": " + ErrnoText(-err));
  }
  return std::nullopt;
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
  std::vector<MaxEntries> max_entries = ReadMaxEntries(info[3]);

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
  if (auto e = SetMaxEntries(obj, path_, max_entries)) {
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
