// rtnetlink for the CNI (src/cni/rtnl.ts, used by wiring.ts and
// host-links.ts): the veth and pod steps as raw NETLINK_ROUTE requests, each
// acked before the next (a failure stops there). Pod-side steps enter the
// pod's netns on the calling thread (NetnsScope) and always switch back; the
// socket is opened after entering, so it talks to that namespace.
//
// And the reads of CHECK and GC (the pod end's link, addresses and routes;
// every link of a namespace): dumps (NLM_F_DUMP, read until NLMSG_DONE, read
// again when the kernel flags them interrupted) whose answers equal what
// `ip -j` shows (test/cni/rtnl-read.test.ts compares them), each on a thread
// of its own that enters the namespace asked for (the JS thread never does
// for a read).
//
// Errors: op "rtnl", message "<step, named as the equivalent ip command>:
// <errno text>[; kernel extack]", errno set (EEXIST for a leftover, ENODEV
// for a missing link).
#include "rtnl.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "netns.h"
#include "own_thread.h"

namespace sluice {
namespace {

struct Failure {
  int err;
  std::string message;
};

class Msg {
 public:
  Msg(uint16_t type, uint16_t flags) {
    buf_.resize(NLMSG_HDRLEN);
    auto* h = Hdr();
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    h->nlmsg_len = NLMSG_HDRLEN;
  }
  template <typename T>
  T* Body() {
    size_t off = buf_.size();
    buf_.resize(off + NLMSG_ALIGN(sizeof(T)));
    Hdr()->nlmsg_len = static_cast<uint32_t>(buf_.size());
    return reinterpret_cast<T*>(buf_.data() + off);
  }
  void Attr(uint16_t type, const void* data, size_t len) {
    size_t off = buf_.size();
    buf_.resize(off + RTA_ALIGN(RTA_LENGTH(len)));
    auto* a = reinterpret_cast<rtattr*>(buf_.data() + off);
    a->rta_type = type;
    a->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    if (len > 0) std::memcpy(RTA_DATA(a), data, len);
    Hdr()->nlmsg_len = static_cast<uint32_t>(buf_.size());
  }
  void U32(uint16_t type, uint32_t v) { Attr(type, &v, sizeof v); }
  void U8(uint16_t type, uint8_t v) { Attr(type, &v, sizeof v); }
  void Str(uint16_t type, const std::string& s) { Attr(type, s.c_str(), s.size() + 1); }
  size_t Nest(uint16_t type) {
    size_t off = buf_.size();
    Attr(type, nullptr, 0);
    return off;
  }
  void End(size_t off) {
    reinterpret_cast<rtattr*>(buf_.data() + off)->rta_len = static_cast<uint16_t>(buf_.size() - off);
  }
  // A raw struct inside the message (veth peer's ifinfomsg).
  template <typename T>
  T* Raw() {
    size_t off = buf_.size();
    buf_.resize(off + NLMSG_ALIGN(sizeof(T)));
    Hdr()->nlmsg_len = static_cast<uint32_t>(buf_.size());
    return reinterpret_cast<T*>(buf_.data() + off);
  }
  nlmsghdr* Hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  std::vector<char>& Buf() { return buf_; }

 private:
  std::vector<char> buf_;
};

class Socket {
 public:
  Socket() {
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd_ < 0) {
      err_ = errno;
      return;
    }
    int one = 1;
    setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  }
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int OpenError() const { return err_; }

  // Sends msg and waits for its ack; reply (if given) receives the first
  // non-error message's payload for a GET. Returns 0 or a positive errno.
  int Do(Msg& msg, std::string& extack, std::vector<char>* reply = nullptr) {
    return Exchange(msg, [&](const nlmsghdr* r) {
      if (r->nlmsg_type == NLMSG_ERROR) return ErrorOf(r, extack);
      if (reply != nullptr && reply->empty()) reply->assign(reinterpret_cast<const char*>(r), reinterpret_cast<const char*>(r) + r->nlmsg_len);
      return -1;
    });
  }

  // Sends msg as a dump request (NLM_F_DUMP, no ack) and collects every
  // reply message, however many datagrams they take, until NLMSG_DONE.
  // interrupted: the kernel flagged the dump inconsistent (NLM_F_DUMP_INTR:
  // the table changed while it was being read). Returns 0 or a positive errno.
  int Dump(Msg& msg, std::string& extack, std::vector<std::vector<char>>& out, bool& interrupted) {
    out.clear();
    interrupted = false;
    msg.Hdr()->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    return Exchange(msg, [&](const nlmsghdr* r) {
      if (r->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
      if (r->nlmsg_type == NLMSG_ERROR) return ErrorOf(r, extack);
      if (r->nlmsg_type == NLMSG_DONE) {
        // Its payload, when there is one, is the dump's final status (negative errno).
        int status = r->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) ? *static_cast<const int*>(NLMSG_DATA(r)) : 0;
        return status < 0 ? -status : 0;
      }
      out.emplace_back(reinterpret_cast<const char*>(r), reinterpret_cast<const char*>(r) + r->nlmsg_len);
      return -1;
    });
  }

 private:
  int fd_ = -1;
  int err_ = 0;
  uint32_t seq_ = 0;

  // Sends msg, then hands each message answering it to on(), datagram after
  // datagram, until on() returns a status (0 or a positive errno; -1: more).
  template <typename OnMessage>
  int Exchange(Msg& msg, OnMessage on) {
    auto* h = msg.Hdr();
    h->nlmsg_seq = ++seq_;
    if (send(fd_, msg.Buf().data(), h->nlmsg_len, 0) < 0) return errno;
    std::vector<char> buf(32768);
    for (;;) {
      // Peek at the datagram's size first: a dump part may exceed any fixed buffer.
      ssize_t n = recv(fd_, buf.data(), buf.size(), MSG_PEEK | MSG_TRUNC);
      if (n >= 0 && static_cast<size_t>(n) > buf.size()) {
        buf.resize(static_cast<size_t>(n));
        continue;
      }
      if (n >= 0) n = recv(fd_, buf.data(), buf.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      int len = static_cast<int>(n);
      for (auto* r = reinterpret_cast<const nlmsghdr*>(buf.data()); NLMSG_OK(r, len); r = NLMSG_NEXT(r, len)) {
        if (r->nlmsg_seq != seq_) continue;
        int status = on(r);
        if (status >= 0) return status;
      }
    }
  }

  // An NLMSG_ERROR's errno (0 for an ack), and the kernel's extack message.
  static int ErrorOf(const nlmsghdr* r, std::string& extack) {
    auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(r));
    if (e->error != 0 && (r->nlmsg_flags & NLM_F_ACK_TLVS)) {
      size_t off = NLMSG_HDRLEN + sizeof(nlmsgerr);
      if (!(r->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
      int alen = static_cast<int>(r->nlmsg_len) - static_cast<int>(off);
      for (auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(r) + off); alen > 0 && RTA_OK(a, alen);
           a = RTA_NEXT(a, alen)) {
        if (a->rta_type == NLMSGERR_ATTR_MSG) extack = static_cast<const char*>(RTA_DATA(a));
      }
    }
    return -e->error;
  }
};

struct Runner {
  Socket sock;
  std::optional<Failure> failure;
  // Runs one step; false (and failure set) when it failed.
  bool Step(Msg& m, const std::string& step, std::vector<char>* reply = nullptr) {
    if (failure) return false;
    std::string extack;
    int err = sock.Do(m, extack, reply);
    if (err != 0) {
      failure = Failure{err, step + ": " + ErrnoText(err) + (extack.empty() ? "" : "; " + extack)};
      return false;
    }
    return true;
  }
  // Runs one dump into out; false (and failure set) when it failed. A dump
  // the kernel flags as interrupted is read again: a listing that misses a
  // link would tell GC that a live veth is gone.
  bool Dump(Msg& m, const std::string& step, std::vector<std::vector<char>>& out) {
    if (failure) return false;
    constexpr int kAttempts = 5;
    for (int attempt = 1;; attempt++) {
      std::string extack;
      bool interrupted = false;
      int err = sock.Dump(m, extack, out, interrupted);
      if (err != 0) {
        failure = Failure{err, step + ": " + ErrnoText(err) + (extack.empty() ? "" : "; " + extack)};
        return false;
      }
      if (!interrupted) return true;
      if (attempt == kAttempts) {
        failure = Failure{EAGAIN, step + ": dump interrupted by concurrent changes " + std::to_string(kAttempts) + " times"};
        return false;
      }
    }
  }
};

bool ParseMac(const std::string& s, uint8_t out[6]) {
  unsigned v[6];
  if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return false;
  for (int i = 0; i < 6; i++) out[i] = static_cast<uint8_t>(v[i]);
  return true;
}

struct Addr {
  int family;
  uint8_t bytes[16];
  size_t len;
  uint8_t prefix;
  std::string text;  // as given, without the prefix
};

Addr ParseAddr(Napi::Env env, const std::string& cidr) {
  Addr a{};
  auto slash = cidr.find('/');
  a.text = cidr.substr(0, slash);
  a.family = a.text.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  a.len = a.family == AF_INET ? 4 : 16;
  if (inet_pton(a.family, a.text.c_str(), a.bytes) != 1) throw Napi::TypeError::New(env, "bad address " + cidr);
  a.prefix = static_cast<uint8_t>(a.len * 8);
  if (slash != std::string::npos) {
    // strtoul, not stoi: a malformed prefix is a TypeError for the caller, never a C++ exception
    // escaping into node (which would abort the agent that runs the plugin).
    const std::string p = cidr.substr(slash + 1);
    char* end = nullptr;
    unsigned long n = std::strtoul(p.c_str(), &end, 10);
    if (p.empty() || *end != '\0' || n > a.len * 8) throw Napi::TypeError::New(env, "bad prefix length in " + cidr);
    a.prefix = static_cast<uint8_t>(n);
  }
  return a;
}

std::vector<Addr> GetAddrs(const Napi::Value& v) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), "addresses must be an array");
  auto arr = v.As<Napi::Array>();
  std::vector<Addr> out;
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(ParseAddr(v.Env(), GetString(arr.Get(i), "address")));
  return out;
}

std::string MacText(const uint8_t* m, size_t len) {
  std::string s;
  char b[4];
  for (size_t i = 0; i < len; i++) {
    std::snprintf(b, sizeof b, i == 0 ? "%02x" : ":%02x", m[i]);
    s += b;
  }
  return s;
}

[[noreturn]] void Throw(Napi::Env env, const Failure& f, const std::string& ifname, const std::string& netns = "") {
  ErrorInfo e{f.err, "rtnl"};
  e.message = f.message;
  e.ifname = ifname;
  e.netns = netns;
  ThrowBpfError(env, e);
}

void SetLink(Runner& r, int ifindex, const std::string& step, bool up, const std::string* alias, bool addrgenNone) {
  Msg m(RTM_NEWLINK, 0);
  auto* ifi = m.Body<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  if (up) {
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
  }
  if (alias != nullptr) m.Attr(IFLA_IFALIAS, alias->data(), alias->size());
  if (addrgenNone) {
    size_t spec = m.Nest(IFLA_AF_SPEC);
    size_t in6 = m.Nest(AF_INET6);
    m.U8(IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
    m.End(in6);
    m.End(spec);
  }
  r.Step(m, step);
}

void RouteReplace(Runner& r, int ifindex, const Addr& dst, bool isDefault, const Addr* via, const std::string& step) {
  Msg m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
  auto* rt = m.Body<rtmsg>();
  rt->rtm_family = static_cast<uint8_t>(dst.family);
  rt->rtm_dst_len = isDefault ? 0 : static_cast<uint8_t>(dst.len * 8);
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_BOOT;
  rt->rtm_scope = via != nullptr ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rt->rtm_type = RTN_UNICAST;
  if (!isDefault) m.Attr(RTA_DST, dst.bytes, dst.len);
  if (via != nullptr) m.Attr(RTA_GATEWAY, via->bytes, via->len);
  m.U32(RTA_OIF, static_cast<uint32_t>(ifindex));
  r.Step(m, step);
}

void NeighReplace(Runner& r, int ifindex, const Addr& dst, const uint8_t mac[6], const std::string& step) {
  Msg m(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
  auto* nd = m.Body<ndmsg>();
  nd->ndm_family = static_cast<uint8_t>(dst.family);
  nd->ndm_ifindex = ifindex;
  nd->ndm_state = NUD_PERMANENT;
  m.Attr(NDA_DST, dst.bytes, dst.len);
  m.Attr(NDA_LLADDR, mac, 6);
  r.Step(m, step);
}

// A link's fields, as `ip -j -d link show` gives them (rtnl.ts toHostLink, toSummary):
// read on any thread, made a JS object on the JS thread.
struct LinkInfo {
  int ifindex = 0;
  bool up = false;
  std::string name;
  std::optional<std::string> mac, alias, kind;
  std::optional<uint32_t> mtu;
};

std::string AttrString(const rtattr* a) {
  return std::string(static_cast<const char*>(RTA_DATA(a)), strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
}

LinkInfo ParseLink(const nlmsghdr* h) {
  auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
  LinkInfo l;
  l.ifindex = ifi->ifi_index;
  l.up = (ifi->ifi_flags & IFF_UP) != 0;
  int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)));
  for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    switch (a->rta_type) {
      case IFLA_ADDRESS:
        l.mac = MacText(static_cast<const uint8_t*>(RTA_DATA(a)), RTA_PAYLOAD(a));
        break;
      case IFLA_MTU:
        if (RTA_PAYLOAD(a) >= sizeof(uint32_t)) l.mtu = *static_cast<const uint32_t*>(RTA_DATA(a));
        break;
      case IFLA_IFNAME:
        l.name = AttrString(a);
        break;
      case IFLA_IFALIAS:
        l.alias = AttrString(a);
        break;
      case IFLA_LINKINFO: {
        int ilen = static_cast<int>(RTA_PAYLOAD(a));
        for (auto* i = static_cast<const rtattr*>(RTA_DATA(a)); RTA_OK(i, ilen); i = RTA_NEXT(i, ilen)) {
          if (i->rta_type == IFLA_INFO_KIND) l.kind = AttrString(i);
        }
        break;
      }
      default:
        break;
    }
  }
  return l;
}

// {ifindex, name, up, mac?, mtu?, alias?, kind?}: NativeLink in src/datapath/addon.ts.
Napi::Object LinkObject(Napi::Env env, const LinkInfo& l) {
  auto o = Napi::Object::New(env);
  o.Set("ifindex", l.ifindex);
  o.Set("name", l.name);
  o.Set("up", l.up);
  if (l.mac) o.Set("mac", *l.mac);
  if (l.mtu) o.Set("mtu", *l.mtu);
  if (l.alias) o.Set("alias", *l.alias);
  if (l.kind) o.Set("kind", *l.kind);
  return o;
}

// Returns false (no failure) when the link does not exist.
bool GetLink(Runner& r, const std::string& name, std::vector<char>& reply) {
  Msg m(RTM_GETLINK, 0);
  auto* ifi = m.Body<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  m.Str(IFLA_IFNAME, name);
  m.U32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::string extack;
  int err = r.sock.Do(m, extack, &reply);
  if (err == ENODEV) return false;
  if (err != 0) {
    r.failure = Failure{err, "link show dev " + name + ": " + ErrnoText(err)};
    return false;
  }
  return true;
}

}  // namespace

namespace {
struct VethArgs {
  std::string dev, peer, netns, alias;
  uint32_t mtu;
  uint8_t hostMac[6], podMac[6];
  std::vector<Addr> addrs;
};

// The host-side steps; no netns switch (the peer is created in the pod's
// netns by fd), so this runs on a worker thread.
void CreateVeth(const VethArgs& v, std::optional<Failure>& failure, std::vector<char>& reply) {
  const std::string& dev = v.dev;
  int nsfd = open(v.netns.c_str(), O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) {
    failure = Failure{errno, "open netns " + v.netns + ": " + ErrnoText(errno)};
    return;
  }
  Runner r;
  if (r.sock.OpenError() != 0) {
    close(nsfd);
    failure = Failure{r.sock.OpenError(), "netlink socket: " + ErrnoText(r.sock.OpenError())};
    return;
  }
  {
    Msg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    auto* ifi = m.Body<ifinfomsg>();
    ifi->ifi_family = AF_UNSPEC;
    m.Str(IFLA_IFNAME, dev);
    m.U32(IFLA_MTU, v.mtu);
    m.Attr(IFLA_ADDRESS, v.hostMac, 6);
    size_t li = m.Nest(IFLA_LINKINFO);
    m.Str(IFLA_INFO_KIND, "veth");
    size_t data = m.Nest(IFLA_INFO_DATA);
    size_t p = m.Nest(VETH_INFO_PEER);
    auto* pifi = m.Raw<ifinfomsg>();
    pifi->ifi_family = AF_UNSPEC;
    m.Str(IFLA_IFNAME, v.peer);
    m.U32(IFLA_MTU, v.mtu);
    m.Attr(IFLA_ADDRESS, v.podMac, 6);
    m.U32(IFLA_NET_NS_FD, static_cast<uint32_t>(nsfd));
    m.End(p);
    m.End(data);
    m.End(li);
    r.Step(m, "link add " + dev + " type veth peer name " + v.peer + " netns " + v.netns);
  }
  close(nsfd);
  int ifindex = r.failure ? 0 : static_cast<int>(if_nametoindex(dev.c_str()));
  if (!r.failure && ifindex == 0) r.failure = Failure{errno, "link show dev " + dev + ": " + ErrnoText(errno)};
  SetLink(r, ifindex, "link set dev " + dev + " alias", false, &v.alias, false);
  SetLink(r, ifindex, "link set dev " + dev + " addrgenmode none", false, nullptr, true);
  SetLink(r, ifindex, "link set dev " + dev + " up", true, nullptr, false);
  for (const Addr& a : v.addrs) {
    RouteReplace(r, ifindex, a, false, nullptr, "route replace " + a.text + " dev " + dev + " scope link");
    NeighReplace(r, ifindex, a, v.podMac, "neigh replace " + a.text + " lladdr " + MacText(v.podMac, 6) + " dev " + dev + " nud permanent");
  }
  if (!r.failure && !GetLink(r, dev, reply) && !r.failure) r.failure = Failure{ENODEV, "link show dev " + dev + ": " + ErrnoText(ENODEV)};
  failure = r.failure;
}

class CreateVethJob : public OwnThreadJob {
 public:
  explicit CreateVethJob(VethArgs args) : args_(std::move(args)) {}
  void Execute() override { CreateVeth(args_, failure_, reply_); }
  void Settle(Napi::Env env, Napi::Promise::Deferred& deferred) override {
    if (failure_) {
      ErrorInfo e{failure_->err, "rtnl"};
      e.message = failure_->message;
      e.ifname = args_.dev;
      deferred.Reject(MakeBpfError(env, e));
    } else {
      deferred.Resolve(LinkObject(env, ParseLink(reinterpret_cast<const nlmsghdr*>(reply_.data()))));
    }
  }

 private:
  VethArgs args_;
  std::optional<Failure> failure_;
  std::vector<char> reply_;
};
}  // namespace

// rtnlCreateVeth({hostIfname, podIfname, mtu, hostMac, podMac, netns, alias, addresses})
// → Promise<the host link ({ifindex, mac, mtu, up, alias, kind})>, on a thread of its own (own_thread.h).
Napi::Value RtnlCreateVeth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = info[0].As<Napi::Object>();
  VethArgs v;
  v.dev = GetString(Prop(o, "hostIfname"), "hostIfname");
  v.peer = GetString(Prop(o, "podIfname"), "podIfname");
  v.netns = GetString(Prop(o, "netns"), "netns");
  v.alias = GetString(Prop(o, "alias"), "alias");
  v.mtu = GetU32(Prop(o, "mtu"), "mtu");
  if (!ParseMac(GetString(Prop(o, "hostMac"), "hostMac"), v.hostMac) || !ParseMac(GetString(Prop(o, "podMac"), "podMac"), v.podMac)) {
    throw Napi::TypeError::New(env, "bad MAC address");
  }
  v.addrs = GetAddrs(Prop(o, "addresses"));
  return RunOnOwnThread(env, "rtnlCreateVeth", std::make_unique<CreateVethJob>(std::move(v)));
}

// rtnlConfigurePod({netns, podIfname, addresses, gateway, hostMac}): in the pod's netns,
// addrgenmode none, addresses, gateway neighbour, up, gateway route, default route.
void RtnlConfigurePod(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = info[0].As<Napi::Object>();
  std::string netns = GetString(Prop(o, "netns"), "netns");
  std::string dev = GetString(Prop(o, "podIfname"), "podIfname");
  Addr gw = ParseAddr(env, GetString(Prop(o, "gateway"), "gateway"));
  uint8_t hostMac[6];
  if (!ParseMac(GetString(Prop(o, "hostMac"), "hostMac"), hostMac)) throw Napi::TypeError::New(env, "bad MAC address");
  std::vector<Addr> addrs = GetAddrs(Prop(o, "addresses"));

  std::optional<Failure> failure;
  {
    NetnsScope scope(netns, "rtnl");
    if (scope.Error()) {
      failure = Failure{scope.Error()->err, scope.Error()->message};
    } else {
      Runner r;
      if (r.sock.OpenError() != 0) r.failure = Failure{r.sock.OpenError(), "netlink socket: " + ErrnoText(r.sock.OpenError())};
      int ifindex = r.failure ? 0 : static_cast<int>(if_nametoindex(dev.c_str()));
      if (!r.failure && ifindex == 0) r.failure = Failure{errno, "link show dev " + dev + ": " + ErrnoText(errno)};
      SetLink(r, ifindex, "link set dev " + dev + " addrgenmode none", false, nullptr, true);
      for (const Addr& a : addrs) {
        Msg m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
        auto* ifa = m.Body<ifaddrmsg>();
        ifa->ifa_family = static_cast<uint8_t>(a.family);
        ifa->ifa_prefixlen = a.prefix;
        ifa->ifa_index = static_cast<uint32_t>(ifindex);
        m.Attr(IFA_LOCAL, a.bytes, a.len);
        m.Attr(IFA_ADDRESS, a.bytes, a.len);
        r.Step(m, "addr replace " + a.text + "/" + std::to_string(a.prefix) + " dev " + dev);
      }
      NeighReplace(r, ifindex, gw, hostMac, "neigh replace " + gw.text + " lladdr " + MacText(hostMac, 6) + " dev " + dev + " nud permanent");
      SetLink(r, ifindex, "link set dev " + dev + " up", true, nullptr, false);
      RouteReplace(r, ifindex, gw, false, nullptr, "route replace " + gw.text + "/32 dev " + dev + " scope link");
      RouteReplace(r, ifindex, gw, true, &gw, "route replace default via " + gw.text + " dev " + dev);
      failure = r.failure;
    }
  }  // back in our own netns before any JS runs
  if (failure) Throw(env, *failure, dev, netns);
}

// rtnlLinkGet(name) → the link or undefined when there is none (our netns).
Napi::Value RtnlLinkGet(const Napi::CallbackInfo& info) {
  std::string name = GetString(info[0], "name");
  Runner r;
  if (r.sock.OpenError() != 0) Throw(info.Env(), Failure{r.sock.OpenError(), "netlink socket: " + ErrnoText(r.sock.OpenError())}, name);
  std::vector<char> reply;
  bool found = GetLink(r, name, reply);
  if (r.failure) Throw(info.Env(), *r.failure, name);
  return found ? LinkObject(info.Env(), ParseLink(reinterpret_cast<const nlmsghdr*>(reply.data()))) : info.Env().Undefined();
}

// rtnlLinkDel(name) → Promise<false when there was no such link>. On a
// thread of its own (own_thread.h), in our own netns (a new thread starts in
// its creator's, and the JS thread is never elsewhere while JS runs): deleting a veth waits for
// RCU grace periods (tens of ms), which must not stall the agent's loop for a
// burst of DELs.
namespace {
class LinkDelJob : public OwnThreadJob {
 public:
  explicit LinkDelJob(std::string name) : name_(std::move(name)) {}
  void Execute() override {
    Runner r;
    if (r.sock.OpenError() != 0) {
      failure_ = Failure{r.sock.OpenError(), "netlink socket: " + ErrnoText(r.sock.OpenError())};
      return;
    }
    Msg m(RTM_DELLINK, 0);
    auto* ifi = m.Body<ifinfomsg>();
    ifi->ifi_family = AF_UNSPEC;
    m.Str(IFLA_IFNAME, name_);
    std::string extack;
    int err = r.sock.Do(m, extack);
    if (err == ENODEV) return;
    if (err != 0) {
      failure_ = Failure{err, "link del dev " + name_ + ": " + ErrnoText(err)};
      return;
    }
    found_ = true;
  }
  void Settle(Napi::Env env, Napi::Promise::Deferred& deferred) override {
    if (failure_) {
      ErrorInfo e{failure_->err, "rtnl"};
      e.message = failure_->message;
      e.ifname = name_;
      deferred.Reject(MakeBpfError(env, e));
    } else {
      deferred.Resolve(Napi::Boolean::New(env, found_));
    }
  }

 private:
  std::string name_;
  std::optional<Failure> failure_;
  bool found_ = false;
};
}  // namespace

Napi::Value RtnlLinkDel(const Napi::CallbackInfo& info) {
  return RunOnOwnThread(info.Env(), "rtnlLinkDel", std::make_unique<LinkDelJob>(GetString(info[0], "name")));
}

// The read side, for CHECK and GC (wiring.ts inspectPod, host-links.ts):
// dumps whose answers match what `ip -j -d link show`, `addr show dev X` and
// `route show dev X` show. Each runs on a thread of
// its own (own_thread.h), which enters the namespace asked for and dies
// there: the JS thread never changes namespace for them.
namespace {

std::string AddrText(int family, const rtattr* a) {
  char b[INET6_ADDRSTRLEN];
  size_t want = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
  if (want == 0 || RTA_PAYLOAD(a) < want || inet_ntop(family, RTA_DATA(a), b, sizeof b) == nullptr) return "";
  return b;
}

// Every link of the namespace (RTM_GETLINK dump), statistics left out.
bool DumpLinks(Runner& r, std::vector<LinkInfo>& out) {
  Msg m(RTM_GETLINK, 0);
  m.Body<ifinfomsg>()->ifi_family = AF_UNSPEC;
  m.U32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::vector<std::vector<char>> msgs;
  if (!r.Dump(m, "link show", msgs)) return false;
  for (const auto& msg : msgs) {
    auto* h = reinterpret_cast<const nlmsghdr*>(msg.data());
    if (h->nlmsg_type == RTM_NEWLINK && h->nlmsg_len >= NLMSG_LENGTH(sizeof(ifinfomsg))) out.push_back(ParseLink(h));
  }
  return true;
}

// The link's addresses, every family, in the kernel's order (as `ip addr show
// dev X` lists them): "local/prefixlen", local being IFA_LOCAL, else IFA_ADDRESS.
bool DumpAddrs(Runner& r, int ifindex, const std::string& dev, std::vector<std::string>& out) {
  Msg m(RTM_GETADDR, 0);
  auto* req = m.Body<ifaddrmsg>();
  req->ifa_family = AF_UNSPEC;
  req->ifa_index = static_cast<uint32_t>(ifindex);  // a filter only for kernels in strict mode; checked below
  std::vector<std::vector<char>> msgs;
  if (!r.Dump(m, "addr show dev " + dev, msgs)) return false;
  for (const auto& msg : msgs) {
    auto* h = reinterpret_cast<const nlmsghdr*>(msg.data());
    if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifaddrmsg))) continue;
    auto* ifa = static_cast<const ifaddrmsg*>(NLMSG_DATA(h));
    if (ifa->ifa_index != static_cast<uint32_t>(ifindex)) continue;
    const rtattr* local = nullptr;
    const rtattr* address = nullptr;
    int len = static_cast<int>(IFA_PAYLOAD(h));
    for (auto* a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == IFA_LOCAL) local = a;
      if (a->rta_type == IFA_ADDRESS) address = a;
    }
    const rtattr* shown = local != nullptr ? local : address;
    if (shown != nullptr) out.push_back(AddrText(ifa->ifa_family, shown) + "/" + std::to_string(ifa->ifa_prefixlen));
  }
  return true;
}

struct RouteInfo {
  std::string dst;
  std::optional<std::string> gateway;
};

// `ip route show dev X`: IPv4, table main, not cloned, RTA_OIF is the link
// (a multipath route has none and is not listed). dst as ip prints it:
// "default" for 0/0, a full-length prefix without its length.
bool DumpRoutes(Runner& r, int ifindex, const std::string& dev, std::vector<RouteInfo>& out) {
  Msg m(RTM_GETROUTE, 0);
  m.Body<rtmsg>()->rtm_family = AF_INET;
  std::vector<std::vector<char>> msgs;
  if (!r.Dump(m, "route show dev " + dev, msgs)) return false;
  for (const auto& msg : msgs) {
    auto* h = reinterpret_cast<const nlmsghdr*>(msg.data());
    if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) continue;
    auto* rt = static_cast<const rtmsg*>(NLMSG_DATA(h));
    if (rt->rtm_family != AF_INET || (rt->rtm_flags & RTM_F_CLONED)) continue;
    uint32_t table = rt->rtm_table;
    uint32_t oif = 0;
    const rtattr* dst = nullptr;
    const rtattr* gateway = nullptr;
    int len = static_cast<int>(RTM_PAYLOAD(h));
    for (auto* a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == RTA_TABLE && RTA_PAYLOAD(a) >= 4) table = *static_cast<const uint32_t*>(RTA_DATA(a));
      if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= 4) oif = *static_cast<const uint32_t*>(RTA_DATA(a));
      if (a->rta_type == RTA_DST) dst = a;
      if (a->rta_type == RTA_GATEWAY) gateway = a;
    }
    if (table != RT_TABLE_MAIN || oif != static_cast<uint32_t>(ifindex)) continue;
    RouteInfo ri;
    if (dst != nullptr) {
      ri.dst = AddrText(AF_INET, dst) + (rt->rtm_dst_len != 32 ? "/" + std::to_string(rt->rtm_dst_len) : "");
    } else {
      ri.dst = rt->rtm_dst_len != 0 ? "0/" + std::to_string(rt->rtm_dst_len) : "default";
    }
    if (gateway != nullptr) ri.gateway = AddrText(AF_INET, gateway);
    out.push_back(std::move(ri));
  }
  return true;
}

// A read on a thread of its own, inside netns when one is given; the
// answer (or the failure) becomes JS on the JS thread.
class ReadJob : public OwnThreadJob {
 public:
  ReadJob(std::string netns, std::string ifname) : netns_(std::move(netns)), ifname_(std::move(ifname)) {}
  void Execute() override {
    NetnsScope scope(netns_, "rtnl");  // this thread only; it ends right after
    if (scope.Error()) {
      failure_ = Failure{scope.Error()->err, scope.Error()->message};
      return;
    }
    Runner r;
    if (r.sock.OpenError() != 0) {
      failure_ = Failure{r.sock.OpenError(), "netlink socket: " + ErrnoText(r.sock.OpenError())};
      return;
    }
    Read(r);
    failure_ = r.failure;
  }
  void Settle(Napi::Env env, Napi::Promise::Deferred& deferred) override {
    if (failure_) deferred.Reject(Error(env));
    else deferred.Resolve(Value(env));
  }
  // The same, synchronously: Execute on a thread of its own all the same, joined.
  Napi::Value RunJoined(Napi::Env env) {
    try {
      std::thread t([this] { Execute(); });
      t.join();
    } catch (const std::system_error& e) {
      throw Napi::Error::New(env, std::string("rtnl: cannot start a thread: ") + e.what());
    }
    if (failure_) throw Napi::Error(env, Error(env));
    return Value(env);
  }

 protected:
  virtual void Read(Runner& r) = 0;
  virtual Napi::Value Value(Napi::Env env) = 0;
  const std::string& Ifname() const { return ifname_; }

 private:
  Napi::Value Error(Napi::Env env) const {
    ErrorInfo e{failure_->err, "rtnl"};
    e.message = failure_->message;
    e.ifname = ifname_;
    e.netns = netns_;
    return MakeBpfError(env, e);
  }

  std::string netns_, ifname_;
  std::optional<Failure> failure_;
};

class LinkListJob : public ReadJob {
 public:
  explicit LinkListJob(std::string netns) : ReadJob(std::move(netns), "") {}

 protected:
  void Read(Runner& r) override { DumpLinks(r, links_); }
  Napi::Value Value(Napi::Env env) override {
    auto arr = Napi::Array::New(env, links_.size());
    for (size_t i = 0; i < links_.size(); i++) arr.Set(static_cast<uint32_t>(i), LinkObject(env, links_[i]));
    return arr;
  }

 private:
  std::vector<LinkInfo> links_;
};

class PodViewJob : public ReadJob {
 public:
  PodViewJob(std::string netns, std::string ifname) : ReadJob(std::move(netns), std::move(ifname)) {}

 protected:
  void Read(Runner& r) override {
    std::vector<char> reply;
    if (!GetLink(r, Ifname(), reply)) return;  // no such link (or a failure, in r)
    link_ = ParseLink(reinterpret_cast<const nlmsghdr*>(reply.data()));
    DumpAddrs(r, link_->ifindex, Ifname(), addrs_);
    DumpRoutes(r, link_->ifindex, Ifname(), routes_);  // nothing after a failure (Runner)
  }
  Napi::Value Value(Napi::Env env) override {
    auto o = Napi::Object::New(env);
    if (link_) o.Set("link", LinkObject(env, *link_));
    auto addrs = Napi::Array::New(env, addrs_.size());
    for (size_t i = 0; i < addrs_.size(); i++) addrs.Set(static_cast<uint32_t>(i), addrs_[i]);
    o.Set("addresses", addrs);
    auto routes = Napi::Array::New(env, routes_.size());
    for (size_t i = 0; i < routes_.size(); i++) {
      auto ro = Napi::Object::New(env);
      ro.Set("dst", routes_[i].dst);
      if (routes_[i].gateway) ro.Set("gateway", *routes_[i].gateway);
      routes.Set(static_cast<uint32_t>(i), ro);
    }
    o.Set("routes", routes);
    return o;
  }

 private:
  std::optional<LinkInfo> link_;
  std::vector<std::string> addrs_;
  std::vector<RouteInfo> routes_;
};

}  // namespace

// rtnlLinkList(netns?) → Promise<every link {ifindex, name, up, mac, mtu, alias?, kind?}>,
// of our netns or of netns (a path).
Napi::Value RtnlLinkList(const Napi::CallbackInfo& info) {
  return RunOnOwnThread(info.Env(), "rtnlLinkList", std::make_unique<LinkListJob>(GetOptionalString(info[0], "netns")));
}

// rtnlLinkListSync(netns?): the same, for synchronous callers (the agent's
// endpoint sweep); the calling thread waits, its namespace untouched.
Napi::Value RtnlLinkListSync(const Napi::CallbackInfo& info) {
  LinkListJob job(GetOptionalString(info[0], "netns"));
  return job.RunJoined(info.Env());
}

// rtnlPodView(netns, ifname) → Promise<{link?, addresses: ["a.b.c.d/len"], routes: [{dst, gateway?}]}>:
// what CHECK inspects of the pod end; no link when there is no such interface.
Napi::Value RtnlPodView(const Napi::CallbackInfo& info) {
  return RunOnOwnThread(info.Env(), "rtnlPodView",
                        std::make_unique<PodViewJob>(GetString(info[0], "netns"), GetString(info[1], "ifname")));
}

}  // namespace sluice

// The agent's node routing (src/agent/routing): routes to the other nodes'
// podCIDRs, a vxlan device, and its FDB and neighbour entries. Each call is
// a few short requests in the caller's own namespace (the agent runs in its
// node's), so it runs on the calling thread: the reconciler's plan and steps
// are synchronous.
namespace sluice {
namespace {

[[noreturn]] void ThrowRtnl(Napi::Env env, int err, const std::string& message) {
  ErrorInfo e{err, "rtnl"};
  e.message = message;
  ThrowBpfError(env, e);
}

// The runner's socket could not be opened: a JS exception naming the errno.
void ThrowIfNoSocket(Napi::Env env, const Runner& r) {
  if (r.sock.OpenError() != 0) ThrowRtnl(env, r.sock.OpenError(), "netlink socket: " + ErrnoText(r.sock.OpenError()));
}

// Runs one dump; a failure becomes a JS exception naming the step.
void DumpOrThrow(Napi::Env env, Runner& r, Msg& m, const std::string& step, std::vector<std::vector<char>>& out) {
  if (!r.Dump(m, step, out)) ThrowRtnl(env, r.failure->err, r.failure->message);
}

void RunOrThrow(Napi::Env env, Runner& r, Msg& m, const std::string& step) {
  ThrowIfNoSocket(env, r);
  if (!r.Step(m, step)) ThrowRtnl(env, r.failure->err, r.failure->message);
}

uint32_t OptU32(const Napi::Object& o, const char* name, uint32_t dflt) {
  Napi::Value v = Prop(o, name);
  return v.IsUndefined() || v.IsNull() ? dflt : GetU32(v, name);
}

}  // namespace

// rtnlRouteList(protocol) → [{dst: "a.b.c.d/len", gateway?, ifindex, onlink}]:
// IPv4 routes of table main whose protocol is `protocol` (the agent's own).
Napi::Value RtnlRouteList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t proto = GetU32(info[0], "protocol");
  Runner r;
  ThrowIfNoSocket(env, r);
  Msg m(RTM_GETROUTE, 0);
  m.Body<rtmsg>()->rtm_family = AF_INET;
  std::vector<std::vector<char>> msgs;
  DumpOrThrow(env, r, m, "route show proto " + std::to_string(proto), msgs);
  auto arr = Napi::Array::New(env);
  uint32_t n = 0;
  for (const auto& msg : msgs) {
    auto* h = reinterpret_cast<const nlmsghdr*>(msg.data());
    if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) continue;
    auto* rt = static_cast<const rtmsg*>(NLMSG_DATA(h));
    if (rt->rtm_family != AF_INET || (rt->rtm_flags & RTM_F_CLONED) || rt->rtm_protocol != proto) continue;
    uint32_t table = rt->rtm_table, oif = 0, mtu = 0;
    const rtattr *dst = nullptr, *gateway = nullptr;
    int len = static_cast<int>(RTM_PAYLOAD(h));
    for (auto* a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == RTA_TABLE && RTA_PAYLOAD(a) >= 4) table = *static_cast<const uint32_t*>(RTA_DATA(a));
      if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= 4) oif = *static_cast<const uint32_t*>(RTA_DATA(a));
      if (a->rta_type == RTA_DST) dst = a;
      if (a->rta_type == RTA_GATEWAY) gateway = a;
      if (a->rta_type == RTA_METRICS) {
        int mlen = static_cast<int>(RTA_PAYLOAD(a));
        for (auto* x = static_cast<const rtattr*>(RTA_DATA(a)); RTA_OK(x, mlen); x = RTA_NEXT(x, mlen)) {
          if (x->rta_type == RTAX_MTU && RTA_PAYLOAD(x) >= 4) mtu = *static_cast<const uint32_t*>(RTA_DATA(x));
        }
      }
    }
    if (table != RT_TABLE_MAIN) continue;
    auto o = Napi::Object::New(env);
    o.Set("dst", (dst != nullptr ? AddrText(AF_INET, dst) : std::string("0.0.0.0")) + "/" + std::to_string(rt->rtm_dst_len));
    if (gateway != nullptr) o.Set("gateway", AddrText(AF_INET, gateway));
    o.Set("ifindex", oif);
    o.Set("onlink", (rt->rtm_flags & RTNH_F_ONLINK) != 0);
    if (mtu != 0) o.Set("mtu", mtu);
    arr.Set(n++, o);
  }
  return arr;
}

// rtnlRouteSet({dst, gateway?, ifindex?, protocol, onlink?, mtu?}): creates or
// replaces the IPv4 route of table main to dst.
void RtnlRouteSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = info[0].As<Napi::Object>();
  Addr dst = ParseAddr(env, GetString(Prop(o, "dst"), "dst"));
  std::string gw = GetOptionalString(Prop(o, "gateway"), "gateway");
  uint32_t oif = OptU32(o, "ifindex", 0);
  uint32_t mtu = OptU32(o, "mtu", 0);
  Napi::Value onlinkV = Prop(o, "onlink");
  bool onlink = onlinkV.IsBoolean() && onlinkV.As<Napi::Boolean>().Value();
  Msg m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
  auto* rt = m.Body<rtmsg>();
  rt->rtm_family = AF_INET;
  rt->rtm_dst_len = dst.prefix;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = static_cast<uint8_t>(GetU32(Prop(o, "protocol"), "protocol"));
  rt->rtm_scope = gw.empty() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  if (onlink) rt->rtm_flags |= RTNH_F_ONLINK;
  m.Attr(RTA_DST, dst.bytes, 4);
  if (!gw.empty()) {
    Addr g = ParseAddr(env, gw);
    m.Attr(RTA_GATEWAY, g.bytes, 4);
  }
  if (oif != 0) m.U32(RTA_OIF, oif);
  if (mtu != 0) {
    size_t metrics = m.Nest(RTA_METRICS);
    m.U32(RTAX_MTU, mtu);
    m.End(metrics);
  }
  Runner r;
  RunOrThrow(env, r, m, "route replace " + dst.text + "/" + std::to_string(dst.prefix) + (gw.empty() ? "" : " via " + gw));
}

// rtnlRouteDel({dst, protocol}) → false when there was no such route.
Napi::Value RtnlRouteDel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = info[0].As<Napi::Object>();
  Addr dst = ParseAddr(env, GetString(Prop(o, "dst"), "dst"));
  Msg m(RTM_DELROUTE, 0);
  auto* rt = m.Body<rtmsg>();
  rt->rtm_family = AF_INET;
  rt->rtm_dst_len = dst.prefix;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = static_cast<uint8_t>(GetU32(Prop(o, "protocol"), "protocol"));
  rt->rtm_scope = RT_SCOPE_NOWHERE;
  m.Attr(RTA_DST, dst.bytes, 4);
  Runner r;
  ThrowIfNoSocket(env, r);
  std::string extack;
  int err = r.sock.Do(m, extack);
  if (err == ESRCH) return Napi::Boolean::New(env, false);
  if (err != 0) ThrowRtnl(env, err, "route del " + dst.text + "/" + std::to_string(dst.prefix) + ": " + ErrnoText(err) + (extack.empty() ? "" : "; " + extack));
  return Napi::Boolean::New(env, true);
}

// rtnlVxlanCreate({name, vni, port, local, device, mac, mtu}): a vxlan link
// (no learning: the agent writes the FDB), up. EEXIST when it exists.
void RtnlVxlanCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = info[0].As<Napi::Object>();
  std::string name = GetString(Prop(o, "name"), "name");
  Addr local = ParseAddr(env, GetString(Prop(o, "local"), "local"));
  uint8_t mac[6];
  if (!ParseMac(GetString(Prop(o, "mac"), "mac"), mac)) throw Napi::TypeError::New(env, "bad MAC address");
  std::string device = GetString(Prop(o, "device"), "device");
  unsigned dev = if_nametoindex(device.c_str());
  if (dev == 0) ThrowRtnl(env, ENODEV, "vxlan " + name + ": no device " + device);
  Msg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifi = m.Body<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  m.Str(IFLA_IFNAME, name);
  m.Attr(IFLA_ADDRESS, mac, 6);
  m.U32(IFLA_MTU, GetU32(Prop(o, "mtu"), "mtu"));
  size_t linkinfo = m.Nest(IFLA_LINKINFO);
  m.Str(IFLA_INFO_KIND, "vxlan");
  size_t data = m.Nest(IFLA_INFO_DATA);
  m.U32(IFLA_VXLAN_ID, GetU32(Prop(o, "vni"), "vni"));
  m.Attr(IFLA_VXLAN_LOCAL, local.bytes, 4);
  m.U32(IFLA_VXLAN_LINK, dev);
  uint16_t port = htons(static_cast<uint16_t>(GetU32(Prop(o, "port"), "port")));
  m.Attr(IFLA_VXLAN_PORT, &port, sizeof port);
  m.U8(IFLA_VXLAN_LEARNING, 0);
  m.End(data);
  m.End(linkinfo);
  Runner r;
  RunOrThrow(env, r, m, "link add " + name + " type vxlan");
}

// rtnlNeighList(ifindex, family) → [{dst, mac, permanent}]: the link's
// neighbours (family 2, AF_INET) or FDB entries (family 7, AF_BRIDGE; dst is
// the remote VTEP).
Napi::Value RtnlNeighList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex = GetU32(info[0], "ifindex");
  uint32_t family = GetU32(info[1], "family");
  Runner r;
  ThrowIfNoSocket(env, r);
  Msg m(RTM_GETNEIGH, 0);
  m.Body<ndmsg>()->ndm_family = static_cast<uint8_t>(family);
  std::vector<std::vector<char>> msgs;
  DumpOrThrow(env, r, m, "neigh show", msgs);
  auto arr = Napi::Array::New(env);
  uint32_t n = 0;
  for (const auto& msg : msgs) {
    auto* h = reinterpret_cast<const nlmsghdr*>(msg.data());
    if (h->nlmsg_type != RTM_NEWNEIGH || h->nlmsg_len < NLMSG_LENGTH(sizeof(ndmsg))) continue;
    auto* nd = static_cast<const ndmsg*>(NLMSG_DATA(h));
    if (nd->ndm_ifindex != static_cast<int>(ifindex) || nd->ndm_family != family) continue;
    auto o = Napi::Object::New(env);
    int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ndmsg)));
    for (auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(nd) + NLMSG_ALIGN(sizeof(ndmsg))); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == NDA_DST) o.Set("dst", AddrText(AF_INET, a));
      if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6) o.Set("mac", MacText(static_cast<const uint8_t*>(RTA_DATA(a)), 6));
    }
    o.Set("permanent", (nd->ndm_state & NUD_PERMANENT) != 0);
    arr.Set(n++, o);
  }
  return arr;
}

namespace {
Msg NeighMsg(Napi::Env env, const Napi::Object& o, uint16_t type, uint16_t flags, std::string& what) {
  uint32_t family = GetU32(Prop(o, "family"), "family");
  Addr dst = ParseAddr(env, GetString(Prop(o, "dst"), "dst"));
  std::string macText = GetString(Prop(o, "mac"), "mac");
  uint8_t mac[6];
  if (!ParseMac(macText, mac)) throw Napi::TypeError::New(env, "bad MAC address");
  Msg m(type, flags);
  auto* nd = m.Body<ndmsg>();
  nd->ndm_family = static_cast<uint8_t>(family);
  nd->ndm_ifindex = static_cast<int>(GetU32(Prop(o, "ifindex"), "ifindex"));
  nd->ndm_state = NUD_PERMANENT;
  if (family == AF_BRIDGE) nd->ndm_flags = NTF_SELF;
  m.Attr(NDA_DST, dst.bytes, 4);
  m.Attr(NDA_LLADDR, mac, 6);
  what = (family == AF_BRIDGE ? "fdb " : "neigh ") + macText + " dst " + dst.text;
  return m;
}
}  // namespace

// rtnlNeighSet({ifindex, family, dst, mac}): a permanent neighbour (AF_INET)
// or FDB entry (AF_BRIDGE: mac → remote VTEP dst), created or replaced.
void RtnlNeighSet(const Napi::CallbackInfo& info) {
  std::string what;
  Msg m = NeighMsg(info.Env(), info[0].As<Napi::Object>(), RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, what);
  Runner r;
  RunOrThrow(info.Env(), r, m, "replace " + what);
}

// rtnlNeighDel({ifindex, family, dst, mac}) → false when there was none.
Napi::Value RtnlNeighDel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string what;
  Msg m = NeighMsg(env, info[0].As<Napi::Object>(), RTM_DELNEIGH, 0, what);
  Runner r;
  ThrowIfNoSocket(env, r);
  std::string extack;
  int err = r.sock.Do(m, extack);
  if (err == ENOENT) return Napi::Boolean::New(env, false);
  if (err != 0) ThrowRtnl(env, err, "del " + what + ": " + ErrnoText(err));
  return Napi::Boolean::New(env, true);
}

}  // namespace sluice
