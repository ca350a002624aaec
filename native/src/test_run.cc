// BPF_PROG_TEST_RUN: run a loaded program on a packet without a network.
#include "test_run.h"

#include <bpf/bpf.h>

#include <cerrno>

#include "common.h"

namespace sluice {

// testRun(progFd, data, ctx | undefined, repeat, dataOutSize)
//   → {retval, durationNs, data}
Napi::Value TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = GetI32(info[0], "progFd");
  Bytes data = GetBytes(info[1], "data");
  bool has_ctx = !info[2].IsUndefined() && !info[2].IsNull();
  Bytes ctx = has_ctx ? GetBytes(info[2], "ctx") : Bytes{nullptr, 0};
  uint32_t repeat = GetU32(info[3], "repeat");
  uint32_t out_size = GetU32(info[4], "dataOutSize");

  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, out_size);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.data, .data_out = out.Data(),
              .data_size_in = static_cast<__u32>(data.length), .data_size_out = out_size,
              .ctx_in = has_ctx ? ctx.data : nullptr, .ctx_size_in = static_cast<__u32>(ctx.length),
              .repeat = static_cast<int>(repeat));
  LogCapture capture;
  if (bpf_prog_test_run_opts(fd, &opts) != 0) {
    int err = errno;
    ErrorInfo e{err, "test_run"};
    e.message = "BPF_PROG_TEST_RUN on prog fd " + std::to_string(fd) + ": " + ErrnoText(err);
    if (err == ENOSPC) {
      e.message += " (output is " + std::to_string(opts.data_size_out) + " bytes, dataOutSize was " +
                   std::to_string(out_size) + ")";
    }
    capture.AttachTo(e);
    ThrowBpfError(env, e);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("retval", opts.retval);
  r.Set("durationNs", opts.duration);
  size_t n = opts.data_size_out < out_size ? opts.data_size_out : out_size;
  r.Set("data", Napi::Buffer<uint8_t>::Copy(env, out.Data(), n));
  return r;
}

}  // namespace sluice
