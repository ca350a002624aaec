// tc hook functions exported to JS (see tc.cc for the argument shapes).
#pragma once

#include <napi.h>

namespace sluice {

Napi::Value TcHookCreate(const Napi::CallbackInfo& info);
Napi::Value TcHookDestroy(const Napi::CallbackInfo& info);
Napi::Value TcAttach(const Napi::CallbackInfo& info);
Napi::Value TcDetach(const Napi::CallbackInfo& info);
Napi::Value TcQuery(const Napi::CallbackInfo& info);

}  // namespace sluice
