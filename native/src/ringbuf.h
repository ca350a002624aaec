// A BPF ring-buffer consumer driven by the environment's libuv loop.
#pragma once

#include <bpf/libbpf.h>
#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace sluice {

class RingBufferReader;

// The uv_poll handle and its teardown bookkeeping. It outlives the reader
// until libuv has closed it, and holds the environment's async cleanup hook
// until then: a worker's environment must not unload this addon while a close
// callback that points into it is still pending.
struct PollHandle {
  uv_poll_t poll;
  RingBufferReader* reader = nullptr;  // null once the reader let go
  napi_async_cleanup_hook_handle cleanup = nullptr;
  bool closing = false;
};

class RingBufferReader : public Napi::ObjectWrap<RingBufferReader> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new RingBufferReader(mapFd, onBatch(records: Buffer[]), keepAlive, maxBatch)
  explicit RingBufferReader(const Napi::CallbackInfo& info);
  ~RingBufferReader() override;

 private:
  void StopJs(const Napi::CallbackInfo& info);
  // Stops polling and frees the ring buffer; with release_js (a JS call, not
  // teardown) also drops the callback and the self-reference. Idempotent.
  void Stop(bool release_js);
  void Deliver();

  static int OnSample(void* ctx, void* data, size_t size);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnEnvCleanup(napi_async_cleanup_hook_handle handle, void* arg);
  static void Close(PollHandle* handle);

  napi_env env_;
  struct ring_buffer* rb_ = nullptr;
  PollHandle* handle_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> async_;
  std::vector<std::vector<uint8_t>> batch_;
  size_t max_batch_ = 4096;
  bool active_ = false;
};

}  // namespace sluice
