// One kernel map, by fd: CRUD, iteration step, batch update/delete/lookup
// (arrays of Buffers, or packed in one Buffer each for large batches), info.
// Sizes are checked here against the map's own info before any syscall, so a
// wrong-sized buffer can never make the kernel read past it.
#include "map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common.h"
#include "object.h"

namespace sluice {

namespace {

bool IsPerCpu(__u32 type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

}  // namespace

Napi::Function BpfMap::Define(Napi::Env env) {
  return DefineClass(env, "BpfMap",
                     {
                         InstanceAccessor<&BpfMap::Fd>("fd"),
                         InstanceAccessor<&BpfMap::Info>("info"),
                         InstanceAccessor<&BpfMap::ValueBytes>("valueBytes"),
                         InstanceMethod<&BpfMap::Lookup>("lookup"),
                         InstanceMethod<&BpfMap::Update>("update"),
                         InstanceMethod<&BpfMap::Delete>("delete"),
                         InstanceMethod<&BpfMap::NextKey>("nextKey"),
                         InstanceMethod<&BpfMap::UpdateBatch>("updateBatch"),
                         InstanceMethod<&BpfMap::DeleteBatch>("deleteBatch"),
                         InstanceMethod<&BpfMap::UpdateBatchPacked>("updateBatchPacked"),
                         InstanceMethod<&BpfMap::LookupBatchPacked>("lookupBatchPacked"),
                         InstanceMethod<&BpfMap::Close>("close"),
                     });
}

BpfMap::BpfMap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfMap>(info) {
  Napi::Env env = info.Env();
  fd_ = GetI32(info[0], "fd");
  if (info[1].IsObject()) {
    owner_ = BpfObject::Unwrap(info[1].As<Napi::Object>());
    owner_ref_ = Napi::Persistent(info[1].As<Napi::Object>());
  }
  owns_fd_ = info[2].ToBoolean();

  std::memset(&info_, 0, sizeof(info_));
  __u32 len = sizeof(info_);
  if (bpf_obj_get_info_by_fd(fd_, &info_, &len) != 0) {
    int err = errno;
    ErrorInfo e{err, "map_info"};
    e.message = "map info for fd " + std::to_string(fd_) + ": " + ErrnoText(err);
    if (owns_fd_) close(fd_);
    fd_ = -1;
    ThrowBpfError(env, e);
  }
  value_bytes_ = info_.value_size;
  if (IsPerCpu(info_.type)) {
    int cpus = libbpf_num_possible_cpus();
    value_bytes_ = ((info_.value_size + 7) / 8) * 8 * static_cast<size_t>(cpus > 0 ? cpus : 1);
  }
}

BpfMap::~BpfMap() {
  if (owns_fd_ && fd_ >= 0) close(fd_);
}

std::string BpfMap::Describe() const { return "map '" + std::string(info_.name) + "'"; }

void BpfMap::CheckOpen(Napi::Env env, const char* op) const {
  if (fd_ >= 0 && (owner_ == nullptr || !owner_->Closed())) return;
  ErrorInfo e{EBADF, op};
  e.message = Describe() + " is closed" + (owner_ != nullptr ? " (its object " + owner_->Path() + " was closed)" : "");
  ThrowBpfError(env, e);
}

Bytes BpfMap::SizedBytes(const Napi::Value& v, size_t want, const char* what, const char* op) const {
  Bytes b = GetBytes(v, what);
  if (b.length != want) {
    ErrorInfo e{EINVAL, op};
    e.message = Describe() + ": " + what + " is " + std::to_string(b.length) + " bytes, expected " +
                std::to_string(want);
    ThrowBpfError(v.Env(), e);
  }
  return b;
}

void BpfMap::ThrowSyscall(Napi::Env env, int err, const char* op, const std::string& what,
                          std::optional<uint32_t> applied) const {
  ErrorInfo e{err, op};
  e.message = Describe() + ": " + what + ": " + ErrnoText(err);
  e.applied = applied;
  ThrowBpfError(env, e);
}

Napi::Value BpfMap::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value BpfMap::Info(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("name", info_.name);
  o.Set("type", info_.type);
  o.Set("keySize", info_.key_size);
  o.Set("valueSize", info_.value_size);
  o.Set("maxEntries", info_.max_entries);
  o.Set("flags", info_.map_flags);
  o.Set("id", info_.id);
  return o;
}

Napi::Value BpfMap::ValueBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(value_bytes_));
}

Napi::Value BpfMap::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "map_lookup");
  Bytes key = SizedBytes(info[0], info_.key_size, "key", "map_lookup");
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, value_bytes_);
  if (bpf_map_lookup_elem(fd_, key.data, out.Data()) != 0) {
    int err = errno;
    if (err == ENOENT) return env.Undefined();
    ThrowSyscall(env, err, "map_lookup", "lookup");
  }
  return out;
}

void BpfMap::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "map_update");
  Bytes key = SizedBytes(info[0], info_.key_size, "key", "map_update");
  Bytes value = SizedBytes(info[1], value_bytes_, "value", "map_update");
  uint32_t flags = info[2].IsUndefined() ? 0u /* BPF_ANY */ : GetU32(info[2], "flags");
  if (bpf_map_update_elem(fd_, key.data, value.data, flags) != 0) {
    ThrowSyscall(env, errno, "map_update", "update");
  }
}

Napi::Value BpfMap::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "map_delete");
  Bytes key = SizedBytes(info[0], info_.key_size, "key", "map_delete");
  if (bpf_map_delete_elem(fd_, key.data) != 0) {
    int err = errno;
    if (err == ENOENT) return Napi::Boolean::New(env, false);
    ThrowSyscall(env, err, "map_delete", "delete");
  }
  return Napi::Boolean::New(env, true);
}

// nextKey(undefined) → first key; nextKey(k) → the key after k (or the first
// key again if k is gone, as the kernel does for hashes and tries).
Napi::Value BpfMap::NextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "map_next_key");
  const void* prev = nullptr;
  if (!info[0].IsUndefined() && !info[0].IsNull()) {
    prev = SizedBytes(info[0], info_.key_size, "key", "map_next_key").data;
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, info_.key_size);
  if (bpf_map_get_next_key(fd_, prev, out.Data()) != 0) {
    int err = errno;
    if (err == ENOENT) return env.Undefined();
    ThrowSyscall(env, err, "map_next_key", "get_next_key");
  }
  return out;
}

// Concatenates an array of equally sized Buffers for the batch syscalls.
std::vector<uint8_t> BpfMap::Pack(const Napi::Value& v, size_t each, const char* what, const char* op) const {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array of Buffers");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<uint8_t> packed;
  packed.reserve(arr.Length() * each);
  for (uint32_t i = 0; i < arr.Length(); i++) {
    std::string label = std::string(what) + "[" + std::to_string(i) + "]";
    Bytes b = SizedBytes(arr.Get(i), each, label.c_str(), op);
    packed.insert(packed.end(), b.data, b.data + b.length);
  }
  return packed;
}

// The kernel leaves `count` untouched when it rejects a batch up front (e.g.
// ENOTSUPP) and writes the number processed otherwise, so an unchanged count
// on error means nothing was applied.
static uint32_t AppliedOnError(uint32_t requested, uint32_t reported) {
  return reported >= requested ? 0 : reported;
}

Napi::Value BpfMap::UpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "map_update_batch");
  if (!info[0].IsArray() || !info[1].IsArray() ||
      info[0].As<Napi::Array>().Length() != info[1].As<Napi::Array>().Length()) {
    throw Napi::TypeError::New(env, "updateBatch(keys, values): two arrays of the same length");
  }
  std::vector<uint8_t> keys = Pack(info[0], info_.key_size, "keys", "map_update_batch");
  std::vector<uint8_t> values = Pack(info[1], value_bytes_, "values", "map_update_batch");
  return RunUpdateBatch(env, keys.data(), values.data(), info[0].As<Napi::Array>().Length(), info[2]);
}

// One BPF_MAP_UPDATE_BATCH of `requested` packed entries; flags: undefined (BPF_ANY) or a number.
Napi::Value BpfMap::RunUpdateBatch(Napi::Env env, const void* keys, const void* values, uint32_t requested,
                                   const Napi::Value& flags) const {
  if (requested == 0) return Napi::Number::New(env, 0);
  uint32_t count = requested;
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = flags.IsUndefined() ? 0u /* BPF_ANY */ : GetU32(flags, "flags"));
  if (bpf_map_update_batch(fd_, keys, values, &count, &opts) != 0) {
    int err = errno;
    ThrowSyscall(env, err, "map_update_batch", "update_batch", AppliedOnError(requested, count));
  }
  return Napi::Number::New(env, count);
}

Napi::Value BpfMap::DeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "map_delete_batch");
  std::vector<uint8_t> keys = Pack(info[0], info_.key_size, "keys", "map_delete_batch");
  uint32_t requested = info[0].As<Napi::Array>().Length();
  if (requested == 0) return Napi::Number::New(env, 0);
  uint32_t count = requested;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (bpf_map_delete_batch(fd_, keys.data(), &count, &opts) != 0) {
    int err = errno;
    ThrowSyscall(env, err, "map_delete_batch", "delete_batch", AppliedOnError(requested, count));
  }
  return Napi::Number::New(env, count);
}

// updateBatchPacked(keys, values, flags?): keys and values each packed in one
// Buffer (count = keys.length / key size), one BPF_MAP_UPDATE_BATCH without a
// copy: a 16381-element array is one syscall and two Buffers.
Napi::Value BpfMap::UpdateBatchPacked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "map_update_batch");
  Bytes keys = GetBytes(info[0], "keys");
  Bytes values = GetBytes(info[1], "values");
  if (info_.key_size == 0 || keys.length % info_.key_size != 0) {
    ErrorInfo e{EINVAL, "map_update_batch"};
    e.message = Describe() + ": keys are " + std::to_string(keys.length) + " bytes, not a multiple of " +
                std::to_string(info_.key_size);
    ThrowBpfError(env, e);
  }
  uint32_t requested = static_cast<uint32_t>(keys.length / info_.key_size);
  if (values.length != static_cast<size_t>(requested) * value_bytes_) {
    ErrorInfo e{EINVAL, "map_update_batch"};
    e.message = Describe() + ": values are " + std::to_string(values.length) + " bytes, expected " +
                std::to_string(static_cast<size_t>(requested) * value_bytes_);
    ThrowBpfError(env, e);
  }
  return RunUpdateBatch(env, keys.data, values.data, requested, info[2]);
}

// lookupBatchPacked(max) → { keys, values }: up to `max` entries in the
// kernel's order, each side packed in one Buffer, by BPF_MAP_LOOKUP_BATCH
// calls resumed from the kernel's batch token until the map ends (ENOENT).
Napi::Value BpfMap::LookupBatchPacked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "map_lookup_batch");
  uint32_t max = GetU32(info[0], "max");
  std::vector<uint8_t> keys(static_cast<size_t>(max) * info_.key_size);
  std::vector<uint8_t> values(static_cast<size_t>(max) * value_bytes_);
  // The token is a key for arrays and a bucket index for hashes: room for either.
  size_t token_size = info_.key_size > 8 ? info_.key_size : 8;
  std::vector<uint8_t> in_token(token_size), out_token(token_size);
  uint32_t total = 0;
  bool first = true;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  while (total < max) {
    uint32_t count = max - total;
    int rc = bpf_map_lookup_batch(fd_, first ? nullptr : in_token.data(), out_token.data(),
                                  keys.data() + static_cast<size_t>(total) * info_.key_size,
                                  values.data() + static_cast<size_t>(total) * value_bytes_, &count, &opts);
    int err = rc != 0 ? errno : 0;
    if (rc != 0 && err != ENOENT) ThrowSyscall(env, err, "map_lookup_batch", "lookup_batch");
    total += count;
    if (rc != 0 || count == 0) break;  // ENOENT: the map ended
    in_token = out_token;
    first = false;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), static_cast<size_t>(total) * info_.key_size));
  out.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), static_cast<size_t>(total) * value_bytes_));
  return out;
}

// Only maps that own their fd (opened from a pin) close it; others belong to
// their object.
void BpfMap::Close(const Napi::CallbackInfo&) {
  if (owns_fd_ && fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace sluice
