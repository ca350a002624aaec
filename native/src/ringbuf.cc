// Ring buffer consumer without a thread: libbpf's ring buffer exposes an epoll
// fd that becomes readable when records are pending; uv_poll watches it on the
// JS thread's loop, and each wake-up drains the ring into one batch that is
// handed to JS in a single call.
#include "ringbuf.h"

#include <cerrno>

#include "common.h"

namespace sluice {

namespace {
// Returned from the sample callback to stop a drain once a batch is full. The
// record that triggered it is already consumed and kept; the epoll fd stays
// readable (level-triggered), so the rest comes on the next loop turn.
constexpr int kBatchFull = -E2BIG;
}  // namespace

Napi::Function RingBufferReader::Define(Napi::Env env) {
  return DefineClass(env, "RingBufferReader", {InstanceMethod<&RingBufferReader::StopJs>("stop")});
}

RingBufferReader::RingBufferReader(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<RingBufferReader>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  int fd = GetI32(info[0], "mapFd");
  if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "onBatch must be a function");
  bool keep_alive = info[2].IsUndefined() ? true : info[2].ToBoolean().Value();
  if (!info[3].IsUndefined()) max_batch_ = GetU32(info[3], "maxBatch");
  if (max_batch_ == 0) max_batch_ = 1;

  LogCapture capture;
  rb_ = ring_buffer__new(fd, &RingBufferReader::OnSample, this, nullptr);
  if (rb_ == nullptr) {
    int err = errno;
    ErrorInfo e{err, "ringbuf_new"};
    e.message = "ring buffer on map fd " + std::to_string(fd) + ": " + ErrnoText(err);
    capture.AttachTo(e);
    ThrowBpfError(env, e);
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    ring_buffer__free(rb_);
    rb_ = nullptr;
    throw Napi::Error::New(env, "no libuv loop for this environment");
  }
  handle_ = new PollHandle;
  int rc = uv_poll_init(loop, &handle_->poll, ring_buffer__epoll_fd(rb_));
  if (rc == 0) {
    handle_->poll.data = handle_;
    rc = uv_poll_start(&handle_->poll, UV_READABLE, &RingBufferReader::OnPoll);
    if (rc != 0) Close(handle_);  // registered with the loop: only uv_close may free it
  } else {
    delete handle_;
  }
  if (rc != 0) {
    handle_ = nullptr;
    ring_buffer__free(rb_);
    rb_ = nullptr;
    ErrorInfo e{-rc, "ringbuf_poll"};
    e.message = std::string("uv_poll on ring buffer: ") + uv_strerror(rc);
    ThrowBpfError(env, e);
  }
  handle_->reader = this;
  if (!keep_alive) uv_unref(reinterpret_cast<uv_handle_t*>(&handle_->poll));
  napi_add_async_cleanup_hook(env_, &RingBufferReader::OnEnvCleanup, handle_, &handle_->cleanup);

  callback_ = Napi::Persistent(info[1].As<Napi::Function>());
  async_ = std::make_unique<Napi::AsyncContext>(env, "SluiceRingBuffer");
  active_ = true;
  // An active reader must not be collected: it would stop delivering silently.
  Ref();
}

RingBufferReader::~RingBufferReader() { Stop(false); }

void RingBufferReader::StopJs(const Napi::CallbackInfo&) { Stop(true); }

// Environment teardown: release native resources only (the environment drops
// the JS references itself); the hook is removed once the handle is closed.
void RingBufferReader::OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) {
  // Without a reader the handle is already closing after stop(); its close
  // callback removes this hook.
  auto* handle = static_cast<PollHandle*>(arg);
  if (handle->reader != nullptr) handle->reader->Stop(false);
}

void RingBufferReader::Close(PollHandle* handle) {
  if (handle->closing) return;
  handle->closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle->poll), [](uv_handle_t* h) {
    auto* closed = static_cast<PollHandle*>(h->data);
    if (closed->cleanup != nullptr) napi_remove_async_cleanup_hook(closed->cleanup);
    delete closed;
  });
}

void RingBufferReader::Stop(bool release_js) {
  if (active_) {
    active_ = false;
    // uv_close stops the poll and drops the fd from libuv's epoll set at
    // once, so the ring buffer (which owns that fd) can be freed right after.
    handle_->reader = nullptr;
    Close(handle_);
    handle_ = nullptr;
    ring_buffer__free(rb_);
    rb_ = nullptr;
    batch_.clear();
    if (release_js) Unref();
  }
  // The async context stays until the destructor: stop() may run inside the
  // very napi_make_callback that uses it.
  if (release_js) callback_.Reset();
}

int RingBufferReader::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingBufferReader*>(ctx);
  const auto* bytes = static_cast<const uint8_t*>(data);
  self->batch_.emplace_back(bytes, bytes + size);
  return self->batch_.size() >= self->max_batch_ ? kBatchFull : 0;
}

void RingBufferReader::OnPoll(uv_poll_t* handle, int status, int) {
  RingBufferReader* self = static_cast<PollHandle*>(handle->data)->reader;
  if (self == nullptr || self->rb_ == nullptr) return;
  int err = status < 0 ? status : 0;
  if (err == 0) {
    int n = ring_buffer__consume(self->rb_);
    if (n < 0 && n != kBatchFull && n != -EINTR) err = n;
  }
  if (!self->batch_.empty()) self->Deliver();
  if (err != 0 && self->active_) {
    // Not expected in practice (EBADF after a map vanished): surface it like
    // any failing event source rather than going quiet.
    Napi::Env env(self->env_);
    Napi::HandleScope scope(env);
    ErrorInfo e{-err, "ringbuf_consume"};
    e.message = "ring buffer reader stopped: " + ErrnoText(-err);
    self->Stop(true);
    napi_fatal_exception(env, MakeBpfError(env, e));
  }
}

// Raw N-API on purpose: a callback may end its environment (process.exit in
// a worker), after which node-addon-api's error path would abort the process
// while building a JS error. Here a failure just ends the delivery.
void RingBufferReader::Deliver() {
  Napi::HandleScope scope{Napi::Env(env_)};
  napi_value records;
  bool ok = napi_create_array_with_length(env_, batch_.size(), &records) == napi_ok;
  for (size_t i = 0; ok && i < batch_.size(); i++) {
    napi_value buf;
    ok = napi_create_buffer_copy(env_, batch_[i].size(), batch_[i].data(), nullptr, &buf) == napi_ok &&
         napi_set_element(env_, records, static_cast<uint32_t>(i), buf) == napi_ok;
  }
  batch_.clear();
  if (!ok) return;
  // The callback may call stop(); nothing below touches the ring buffer.
  napi_value result;
  napi_status status = napi_make_callback(env_, *async_, Value(), callback_.Value(), 1, &records, &result);
  if (status == napi_pending_exception) {
    napi_value exception;
    if (napi_get_and_clear_last_exception(env_, &exception) == napi_ok) napi_fatal_exception(env_, exception);
  }
}

}  // namespace sluice
