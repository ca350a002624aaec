// Network namespace switching for the calling thread.
//
// setns() moves only the calling thread. The addon does netns work
// synchronously on the thread that called it (the JS main thread) and always
// switches back before returning to JS, so no JS ever runs in a foreign netns.
#pragma once

#include <optional>
#include <string>

#include "common.h"

namespace sluice {

class NetnsScope {
 public:
  // Enters the netns at `path`; an empty path stays where we are. On failure
  // nothing changed and Error() says why.
  explicit NetnsScope(const std::string& path, const char* op);
  // Switches back to the original netns. If that ever fails the process
  // aborts: a main thread stranded in a pod's namespace would silently apply
  // every later operation to the wrong network.
  ~NetnsScope();
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;

  const std::optional<ErrorInfo>& Error() const { return error_; }

 private:
  int original_ = -1;
  bool entered_ = false;
  std::optional<ErrorInfo> error_;
};

}  // namespace sluice
