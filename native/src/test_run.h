#pragma once

#include <napi.h>

namespace sluice {

Napi::Value TestRun(const Napi::CallbackInfo& info);

}  // namespace sluice
