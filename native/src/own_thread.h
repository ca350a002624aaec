// Blocking kernel work on a thread of its own, its promise settled on the JS
// thread.
//
// Why not Napi::AsyncWorker: that runs on libuv's pool, 4 threads shared with
// every async fs call and DNS lookup of the process. Creating or deleting a
// veth blocks its thread for RCU grace periods (tens of ms) while barely using
// a CPU, so a burst of 20 DELs in the agent queued 5 deep on the pool, and the
// agent's own file writes queued behind them (bench/cni: DEL 20-way p50
// 215 ms with the pool, 77 ms with a pool of 32). A thread per job has no
// queue; jobs are bounded by the CNI invocations in flight.
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

namespace sluice {

class OwnThreadJob {
 public:
  virtual ~OwnThreadJob() = default;
  // On the job's thread: no JS, no napi calls.
  virtual void Execute() = 0;
  // On the JS thread, once Execute returned: resolve or reject.
  virtual void Settle(Napi::Env env, Napi::Promise::Deferred& deferred) = 0;
};

namespace own_thread_detail {

struct Pending {
  Napi::Promise::Deferred deferred;
  std::unique_ptr<OwnThreadJob> job;
};

inline void SettleOnJsThread(Napi::Env env, Napi::Function, std::nullptr_t*, Pending* p) {
  // env is null when the environment is being torn down: nobody awaits the promise any more.
  if (env != nullptr) {
    try {
      p->job->Settle(env, p->deferred);
    } catch (const Napi::Error& e) {
      p->deferred.Reject(e.Value());
    }
  }
  delete p;
}

using Completion = Napi::TypedThreadSafeFunction<std::nullptr_t, Pending, SettleOnJsThread>;

}  // namespace own_thread_detail

// Starts the job on a new detached thread; the promise keeps the event loop
// alive (through the thread-safe function) until the job has settled it.
inline Napi::Promise RunOnOwnThread(Napi::Env env, const char* name, std::unique_ptr<OwnThreadJob> job) {
  using namespace own_thread_detail;
  auto* pending = new Pending{Napi::Promise::Deferred::New(env), std::move(job)};
  Napi::Promise promise = pending->deferred.Promise();
  Completion done = Completion::New(env, name, 0, 1);
  try {
    std::thread([done, pending]() mutable {
      pending->job->Execute();
      done.BlockingCall(pending);
      done.Release();
    }).detach();
  } catch (const std::system_error& e) {  // no thread to be had (EAGAIN): the job never ran
    done.Release();
    pending->deferred.Reject(Napi::Error::New(env, std::string(name) + ": cannot start a thread: " + e.what()).Value());
    delete pending;
  }
  return promise;
}

}  // namespace sluice
