#include "sockdiag.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "common.h"

namespace sluice {

namespace {

struct DiagRequest {
  nlmsghdr nlh;
  inet_diag_req_v2 req;
};

// A socket's cookie as inet_diag reports it: two 32-bit halves, low first.
uint64_t CookieOf(const inet_diag_sockid& id) {
  return static_cast<uint64_t>(id.idiag_cookie[0]) | (static_cast<uint64_t>(id.idiag_cookie[1]) << 32);
}

DiagRequest Request(uint16_t type, uint16_t flags, uint32_t seq) {
  DiagRequest r;
  std::memset(&r, 0, sizeof(r));
  r.nlh.nlmsg_len = sizeof(r);
  r.nlh.nlmsg_type = type;
  r.nlh.nlmsg_flags = flags;
  r.nlh.nlmsg_seq = seq;
  r.req.sdiag_family = AF_INET;
  r.req.sdiag_protocol = IPPROTO_UDP;
  return r;
}

// The netlink socket, closed on every way out.
class DiagSocket {
 public:
  DiagSocket() : fd_(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) {}
  ~DiagSocket() {
    if (fd_ >= 0) close(fd_);
  }
  DiagSocket(const DiagSocket&) = delete;
  DiagSocket& operator=(const DiagSocket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

bool Send(int fd, const DiagRequest& r) {
  sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;
  return sendto(fd, &r, sizeof(r), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) == static_cast<ssize_t>(sizeof(r));
}

// The ids of the namespace's connected UDP sockets whose cookie is wanted; 0 or a positive errno.
int ListConnected(int fd, const std::unordered_set<uint64_t>& wanted, std::vector<inet_diag_sockid>* out) {
  DiagRequest r = Request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1);
  // A connected UDP socket is in TCP_ESTABLISHED; an unconnected one (bound or not) in TCP_CLOSE.
  r.req.idiag_states = 1U << TCP_ESTABLISHED;
  if (!Send(fd, r)) return errno;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        return e->error == 0 ? 0 : -e->error;
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) continue;
      auto* m = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
      if (wanted.count(CookieOf(m->id)) != 0) out->push_back(m->id);
    }
  }
}

// Destroys one socket by its full id (cookie included, so a new socket on the same ports is never hit):
// 0, ENOENT when it is gone, or another positive errno.
int Destroy(int fd, const inet_diag_sockid& id, uint32_t seq) {
  DiagRequest r = Request(SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, seq);
  r.req.idiag_states = ~0U;
  r.req.id = id;
  if (!Send(fd, r)) return errno;
  char buf[1024];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == seq) return -static_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
    }
  }
}

[[noreturn]] void Throw(Napi::Env env, int err, const char* op, const std::string& what) {
  ErrorInfo e{err, op};
  e.message = what + ": " + ErrnoText(err);
  ThrowBpfError(env, e);
}

}  // namespace

Napi::Value DestroyUdpSockets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "cookies: want an array of bigints");
  Napi::Array cookies = info[0].As<Napi::Array>();
  std::unordered_set<uint64_t> wanted;
  for (uint32_t i = 0; i < cookies.Length(); i++) {
    Napi::Value v = cookies.Get(i);
    if (!v.IsBigInt()) throw Napi::TypeError::New(env, "cookies[" + std::to_string(i) + "]: want a bigint");
    bool lossless = false;
    uint64_t c = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::TypeError::New(env, "cookies[" + std::to_string(i) + "]: not a 64-bit unsigned value");
    wanted.insert(c);
  }
  if (wanted.empty()) return Napi::Number::New(env, 0);
  DiagSocket s;
  if (s.fd() < 0) Throw(env, errno, "sock_diag", "open a NETLINK_SOCK_DIAG socket");
  std::vector<inet_diag_sockid> ids;
  if (int err = ListConnected(s.fd(), wanted, &ids); err != 0) Throw(env, err, "sock_diag", "list the connected UDP sockets");
  uint32_t closed = 0;
  uint32_t seq = 2;
  for (const inet_diag_sockid& id : ids) {
    int err = Destroy(s.fd(), id, seq++);
    if (err == ENOENT) continue;
    if (err != 0) Throw(env, err, "sock_destroy", "close the UDP socket with cookie " + std::to_string(CookieOf(id)));
    closed++;
  }
  return Napi::Number::New(env, closed);
}

}  // namespace sluice
