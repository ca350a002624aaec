#include "netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace sluice {

NetnsScope::NetnsScope(const std::string& path, const char* op) {
  if (path.empty()) return;
  auto fail = [&](int err, const std::string& what) {
    ErrorInfo e{err, op};
    e.netns = path;
    e.message = what + ": " + ErrnoText(err);
    error_ = e;
  };
  // thread-self, not self: the main thread's netns is the one to return to.
  original_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original_ < 0) {
    fail(errno, "open /proc/thread-self/ns/net");
    return;
  }
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    fail(errno, "open netns " + path);
    return;
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    fail(errno, "enter netns " + path);
  } else {
    entered_ = true;
  }
  close(target);
}

NetnsScope::~NetnsScope() {
  if (entered_ && setns(original_, CLONE_NEWNET) != 0) {
    std::perror("sluice_bpf: cannot return to the original network namespace");
    std::abort();
  }
  if (original_ >= 0) close(original_);
}

}  // namespace sluice
