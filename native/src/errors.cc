// Error objects and libbpf log capture.
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "common.h"

namespace sluice {

namespace {

// The capture of the call in progress on this thread, if any.
thread_local std::string* current_capture = nullptr;

int PrintToCapture(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (current_capture == nullptr) {
    // Outside any addon call nothing should print; keep it visible on demand.
    if (level != LIBBPF_DEBUG && std::getenv("SLUICE_LIBBPF_LOG") != nullptr) {
      return std::vfprintf(stderr, fmt, args);
    }
    return 0;
  }
  if (level == LIBBPF_DEBUG) return 0;
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::vector<char> buf(static_cast<size_t>(n) + 1);
  std::vsnprintf(buf.data(), buf.size(), fmt, args);
  current_capture->append(buf.data(), static_cast<size_t>(n));
  return n;
}

constexpr const char kBeginLog[] = "-- BEGIN PROG LOAD LOG --\n";
constexpr const char kEndLog[] = "-- END PROG LOAD LOG --";

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

void InstallLibbpfPrint() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(PrintToCapture); });
}

LogCapture::LogCapture() : previous_(current_capture) { current_capture = &text_; }
LogCapture::~LogCapture() { current_capture = previous_; }

void LogCapture::AttachTo(ErrorInfo& info) const {
  std::string rest = text_;
  size_t begin = rest.find(kBeginLog);
  if (begin != std::string::npos) {
    size_t body = begin + sizeof(kBeginLog) - 1;
    size_t end = rest.find(kEndLog, body);
    if (end == std::string::npos) end = rest.size();
    info.verifierLog = rest.substr(body, end - body);
    size_t after = rest.find('\n', end);
    // Drop the whole marker line ("libbpf: prog 'x': -- BEGIN ...").
    size_t line_start = rest.rfind('\n', begin);
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    rest = rest.substr(0, line_start) + (after == std::string::npos ? "" : rest.substr(after + 1));
  }
  // One line per libbpf message, without the "libbpf: " prefix.
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t nl = rest.find('\n', pos);
    if (nl == std::string::npos) nl = rest.size();
    std::string line = Trim(rest.substr(pos, nl - pos));
    if (line.rfind("libbpf: ", 0) == 0) line = line.substr(8);
    if (!line.empty()) lines.push_back(line);
    pos = nl + 1;
  }
  std::string joined;
  for (const auto& l : lines) joined += l + "\n";
  info.libbpfLog = joined;
  // The verifier's last words (before its statistics line) say what it rejected.
  if (!info.verifierLog.empty()) {
    std::string last;
    size_t p = 0;
    while (p < info.verifierLog.size()) {
      size_t nl = info.verifierLog.find('\n', p);
      if (nl == std::string::npos) nl = info.verifierLog.size();
      std::string line = Trim(info.verifierLog.substr(p, nl - p));
      if (!line.empty() && line.rfind("processed ", 0) != 0) last = line;
      p = nl + 1;
    }
    if (!last.empty()) info.message += " (verifier: " + last + ")";
  }
  // The message carries the last few lines: libbpf's most specific words.
  constexpr size_t kInMessage = 4;
  size_t first = lines.size() > kInMessage ? lines.size() - kInMessage : 0;
  std::string brief;
  for (size_t i = first; i < lines.size(); i++) brief += (brief.empty() ? "" : "; ") + lines[i];
  if (!brief.empty()) info.message += " [libbpf: " + brief + "]";
}

std::string ErrnoText(int err) {
  if (err == 524) return "Operation not supported (ENOTSUPP)";
  // libbpf's own codes (LIBBPF_ERRNO__*), e.g. 4001 for a file that is not a BPF ELF.
  if (err >= __LIBBPF_ERRNO__START && err < __LIBBPF_ERRNO__END) {
    char buf[128];
    libbpf_strerror(err, buf, sizeof(buf));
    return buf;
  }
  return std::strerror(err);
}

AddonData& GetAddonData(Napi::Env env) {
  auto* data = env.GetInstanceData<AddonData>();
  if (data == nullptr) {
    data = new AddonData();
    env.SetInstanceData(data);
  }
  return *data;
}

Napi::Value MakeBpfError(Napi::Env env, const ErrorInfo& info) {
  Napi::Object details = Napi::Object::New(env);
  details.Set("errno", info.err);
  details.Set("op", info.op);
  details.Set("message", info.message);
  if (!info.path.empty()) details.Set("path", info.path);
  if (!info.ifname.empty()) details.Set("ifname", info.ifname);
  if (!info.netns.empty()) details.Set("netns", info.netns);
  if (!info.verifierLog.empty()) details.Set("verifierLog", info.verifierLog);
  if (!info.libbpfLog.empty()) details.Set("libbpfLog", info.libbpfLog);
  if (info.applied.has_value()) details.Set("applied", *info.applied);

  AddonData& data = GetAddonData(env);
  if (!data.errorFactory.IsEmpty()) {
    return data.errorFactory.Call({details});
  }
  Napi::Error plain = Napi::Error::New(env, info.message);
  Napi::Object obj = plain.Value();
  for (const auto& key : {"errno", "op", "path", "ifname", "netns", "verifierLog", "libbpfLog", "applied"}) {
    if (details.Has(key)) obj.Set(key, details.Get(key));
  }
  return obj;
}

void ThrowBpfError(Napi::Env env, const ErrorInfo& info) {
  throw Napi::Error(env, MakeBpfError(env, info));
}

bool IsBytes(const Napi::Value& v) { return v.IsBuffer() || v.IsTypedArray(); }

Bytes GetBytes(const Napi::Value& v, const char* what) {
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    if (ta.TypedArrayType() == napi_uint8_array) {
      Napi::Uint8Array u8 = v.As<Napi::Uint8Array>();
      return Bytes{u8.Data(), u8.ByteLength()};
    }
  }
  throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Buffer");
}

uint32_t GetU32(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d))) {
    throw Napi::RangeError::New(v.Env(), std::string(what) + " must be an integer in 0..2^32-1");
  }
  return static_cast<uint32_t>(d);
}

int32_t GetI32(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int32_t>(d))) {
    throw Napi::RangeError::New(v.Env(), std::string(what) + " must be a 32-bit integer");
  }
  return static_cast<int32_t>(d);
}

std::string GetString(const Napi::Value& v, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::string GetOptionalString(const Napi::Value& v, const char* what) {
  if (v.IsUndefined() || v.IsNull()) return "";
  return GetString(v, what);
}

Napi::Value Prop(const Napi::Object& o, const char* name) { return o.Get(name); }

}  // namespace sluice
