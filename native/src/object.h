// A BPF object file opened and loaded through libbpf.
#pragma once

#include <napi.h>

#include <string>

struct bpf_object;

namespace sluice {

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new BpfObject(path, pinRoot?: string, globals?: {[name]: Buffer},
  //               maxEntries?: {[map name]: number})
  explicit BpfObject(const Napi::CallbackInfo& info);
  ~BpfObject() override;

  bool Closed() const { return obj_ == nullptr; }
  const std::string& Path() const { return path_; }

 private:
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value Programs(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  struct bpf_object* obj_ = nullptr;
  std::string path_;
};

}  // namespace sluice
