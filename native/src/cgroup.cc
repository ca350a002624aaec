#include "cgroup.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace sluice {

namespace {

bool AttachTypeOf(const std::string& name, bpf_attach_type* out) {
  if (name == "connect4") *out = BPF_CGROUP_INET4_CONNECT;
  else if (name == "sendmsg4") *out = BPF_CGROUP_UDP4_SENDMSG;
  else if (name == "recvmsg4") *out = BPF_CGROUP_UDP4_RECVMSG;
  else if (name == "getpeername4") *out = BPF_CGROUP_INET4_GETPEERNAME;
  else return false;
  return true;
}

}  // namespace

Napi::Value CgroupLinkCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int prog_fd = GetI32(info[0], "progFd");
  std::string path = GetString(info[1], "cgroupPath");
  std::string type_name = GetString(info[2], "attachType");
  bpf_attach_type type;
  if (!AttachTypeOf(type_name, &type)) {
    throw Napi::TypeError::New(env, "attachType: want connect4, sendmsg4, recvmsg4 or getpeername4, got '" + type_name + "'");
  }
  int cg = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) {
    int err = errno;
    ErrorInfo e{err, "cgroup_open"};
    e.path = path;
    e.message = "open cgroup " + path + ": " + ErrnoText(err);
    ThrowBpfError(env, e);
  }
  int link = bpf_link_create(prog_fd, cg, type, nullptr);
  int err = errno;
  close(cg);
  if (link < 0) {
    ErrorInfo e{err, "link_create"};
    e.path = path;
    e.message = "attach program fd " + std::to_string(prog_fd) + " to cgroup " + path + " (" + type_name + "): " + ErrnoText(err);
    ThrowBpfError(env, e);
  }
  return Napi::Number::New(env, link);
}

void LinkUpdate(const Napi::CallbackInfo& info) {
  int link_fd = GetI32(info[0], "linkFd");
  int prog_fd = GetI32(info[1], "progFd");
  if (bpf_link_update(link_fd, prog_fd, nullptr) != 0) {
    int err = errno;
    ErrorInfo e{err, "link_update"};
    e.message = "update link fd " + std::to_string(link_fd) + " to program fd " + std::to_string(prog_fd) + ": " + ErrnoText(err);
    ThrowBpfError(info.Env(), e);
  }
}

Napi::Value LinkInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int link_fd = GetI32(info[0], "linkFd");
  bpf_link_info li;
  std::memset(&li, 0, sizeof(li));
  __u32 len = sizeof(li);
  if (bpf_obj_get_info_by_fd(link_fd, &li, &len) != 0) {
    int err = errno;
    ErrorInfo e{err, "link_info"};
    e.message = "info of link fd " + std::to_string(link_fd) + ": " + ErrnoText(err);
    ThrowBpfError(env, e);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("progId", Napi::Number::New(env, li.prog_id));
  o.Set("cgroupId", Napi::BigInt::New(env, static_cast<uint64_t>(li.type == BPF_LINK_TYPE_CGROUP ? li.cgroup.cgroup_id : 0)));
  return o;
}

Napi::Value NetnsCookie(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  int err = 0;
  if (fd < 0) err = errno;
  else if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) err = errno;
  if (fd >= 0) close(fd);
  if (err != 0) {
    ErrorInfo e{err, "netns_cookie"};
    e.message = "the network namespace's cookie (SO_NETNS_COOKIE): " + ErrnoText(err);
    ThrowBpfError(env, e);
  }
  return Napi::BigInt::New(env, cookie);
}

}  // namespace sluice
