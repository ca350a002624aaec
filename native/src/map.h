// A kernel map wrapped by fd, with its info cached at construction.
#pragma once

#include <bpf/bpf.h>
#include <napi.h>

#include <optional>
#include <string>
#include <vector>

#include "common.h"

namespace sluice {

class BpfObject;

class BpfMap : public Napi::ObjectWrap<BpfMap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new BpfMap(fd, owner?: BpfObject, ownsFd: boolean)
  explicit BpfMap(const Napi::CallbackInfo& info);
  ~BpfMap() override;

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value ValueBytes(const Napi::CallbackInfo& info);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  void Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value NextKey(const Napi::CallbackInfo& info);
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info);
  Napi::Value DeleteBatch(const Napi::CallbackInfo& info);
  Napi::Value UpdateBatchPacked(const Napi::CallbackInfo& info);
  Napi::Value LookupBatchPacked(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  std::string Describe() const;
  void CheckOpen(Napi::Env env, const char* op) const;
  Bytes SizedBytes(const Napi::Value& v, size_t want, const char* what, const char* op) const;
  Napi::Value RunUpdateBatch(Napi::Env env, const void* keys, const void* values, uint32_t requested,
                             const Napi::Value& flags) const;
  std::vector<uint8_t> Pack(const Napi::Value& v, size_t each, const char* what, const char* op) const;
  [[noreturn]] void ThrowSyscall(Napi::Env env, int err, const char* op, const std::string& what,
                                 std::optional<uint32_t> applied = std::nullopt) const;

  int fd_ = -1;
  bool owns_fd_ = false;
  BpfObject* owner_ = nullptr;       // maps of a loaded object die with it
  Napi::ObjectReference owner_ref_;  // keeps the owner alive while the map is
  struct bpf_map_info info_;
  size_t value_bytes_ = 0;  // user-space value size: per-CPU maps hold one 8-aligned slot per CPU
};

}  // namespace sluice
