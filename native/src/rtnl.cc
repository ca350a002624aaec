// rtnetlink for the CNI's hot path (src/cni/wiring.ts): the same steps as its
// `ip -batch` lines, as raw NETLINK_ROUTE requests, each acked before the
// next (a failure stops there, like `ip -batch`). Pod-side steps enter the
// pod's netns on the calling thread (NetnsScope) and always switch back; the
// socket is opened after entering, so it talks to that namespace.
//
// Errors: op "rtnl", message "<step, as the ip line>: <errno text>[; kernel
// extack]", errno set (EEXIST for a leftover, ENODEV for a missing link).
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
    auto* h = msg.Hdr();
    h->nlmsg_seq = ++seq_;
    if (send(fd_, msg.Buf().data(), h->nlmsg_len, 0) < 0) return errno;
    std::vector<char> buf(32768);
    for (;;) {
      ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      int len = static_cast<int>(n);
      for (auto* r = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(r, len); r = NLMSG_NEXT(r, len)) {
        if (r->nlmsg_seq != seq_) continue;
        if (r->nlmsg_type == NLMSG_ERROR) {
          auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(r));
          if (e->error != 0 && (r->nlmsg_flags & NLM_F_ACK_TLVS)) {
            size_t off = NLMSG_HDRLEN + sizeof(nlmsgerr);
            if (!(r->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
            int alen = static_cast<int>(r->nlmsg_len) - static_cast<int>(off);
            for (auto* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(r) + off); alen > 0 && RTA_OK(a, alen);
                 a = RTA_NEXT(a, alen)) {
              if (a->rta_type == NLMSGERR_ATTR_MSG) extack = static_cast<const char*>(RTA_DATA(a));
            }
          }
          return -e->error;
        }
        if (reply != nullptr && reply->empty()) {
          reply->assign(reinterpret_cast<char*>(r), reinterpret_cast<char*>(r) + r->nlmsg_len);
        }
      }
    }
  }

 private:
  int fd_ = -1;
  int err_ = 0;
  uint32_t seq_ = 0;
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

// The link's fields, as `ip -j -d link show` gives them to toHostLink.
Napi::Value LinkObject(Napi::Env env, const std::vector<char>& reply) {
  auto* h = reinterpret_cast<const nlmsghdr*>(reply.data());
  auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
  auto o = Napi::Object::New(env);
  o.Set("ifindex", ifi->ifi_index);
  o.Set("up", (ifi->ifi_flags & IFF_UP) != 0);
  int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)));
  for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    switch (a->rta_type) {
      case IFLA_ADDRESS:
        o.Set("mac", MacText(static_cast<const uint8_t*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
        break;
      case IFLA_MTU:
        o.Set("mtu", *static_cast<const uint32_t*>(RTA_DATA(a)));
        break;
      case IFLA_IFNAME:
        o.Set("name", std::string(static_cast<const char*>(RTA_DATA(a))));
        break;
      case IFLA_IFALIAS:
        o.Set("alias", std::string(static_cast<const char*>(RTA_DATA(a)), strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a))));
        break;
      case IFLA_LINKINFO: {
        int ilen = static_cast<int>(RTA_PAYLOAD(a));
        for (auto* i = static_cast<rtattr*>(RTA_DATA(a)); RTA_OK(i, ilen); i = RTA_NEXT(i, ilen)) {
          if (i->rta_type == IFLA_INFO_KIND) o.Set("kind", std::string(static_cast<const char*>(RTA_DATA(i))));
        }
        break;
      }
      default:
        break;
    }
  }
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
      deferred.Resolve(LinkObject(env, reply_));
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
  return found ? LinkObject(info.Env(), reply) : info.Env().Undefined();
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

}  // namespace sluice
