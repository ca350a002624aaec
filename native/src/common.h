// Shared plumbing of the addon: error objects, libbpf log capture, argument
// readers and per-environment data. Everything here is policy-free.
#pragma once

#include <napi.h>

#include <cstdint>
#include <optional>
#include <string>

namespace sluice {

// What went wrong, as plain data. Built while no JS may run (e.g. inside a
// foreign netns) and turned into a JS exception later.
struct ErrorInfo {
  int err = 0;          // positive errno
  std::string op;       // e.g. "map_update", "tc_attach"
  std::string message;  // complete and human-readable
  std::string path;
  std::string ifname;
  std::string netns;
  std::string verifierLog;
  std::string libbpfLog;
  std::optional<uint32_t> applied;  // batch ops: entries written before the failure
};

// The JS error for info: made by the factory registered from
// src/datapath/errors.ts (a BpfError), or a plain Error with the same fields.
Napi::Value MakeBpfError(Napi::Env env, const ErrorInfo& info);
[[noreturn]] void ThrowBpfError(Napi::Env env, const ErrorInfo& info);

// strerror() that also knows the kernel-internal ENOTSUPP (524), which the
// bpf() syscall returns for unsupported batch operations.
std::string ErrnoText(int err);

// Collects libbpf's print output on this thread while alive, so that the
// message (and a verifier log) can travel with the exception of the call that
// caused it. Nests: an inner capture hides output from the outer one.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  const std::string& Text() const { return text_; }
  // Appends libbpf's lines (without any verifier log) to info.libbpfLog and
  // a short form of them to info.message; sets info.verifierLog if present.
  void AttachTo(ErrorInfo& info) const;

 private:
  std::string text_;
  std::string* previous_;
};

// Routes libbpf's print callback into LogCapture (once per process).
void InstallLibbpfPrint();

// Per-environment state (one per main thread / worker).
struct AddonData {
  Napi::FunctionReference errorFactory;
};
AddonData& GetAddonData(Napi::Env env);

// Argument readers that throw TypeError naming the argument.
struct Bytes {
  const uint8_t* data;
  size_t length;
};
Bytes GetBytes(const Napi::Value& v, const char* what);
bool IsBytes(const Napi::Value& v);
uint32_t GetU32(const Napi::Value& v, const char* what);
int32_t GetI32(const Napi::Value& v, const char* what);
std::string GetString(const Napi::Value& v, const char* what);
// undefined/null → empty string.
std::string GetOptionalString(const Napi::Value& v, const char* what);

// Property readers for option objects.
Napi::Value Prop(const Napi::Object& o, const char* name);

}  // namespace sluice
