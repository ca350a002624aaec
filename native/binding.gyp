# Build: npx node-gyp rebuild --nodedir=/usr -C native
# Links the SYSTEM libbpf (Debian: libbpf-dev 1.1) and its deps; no vendored copy.
{
  "targets": [
    {
      "target_name": "sluice_bpf",
      "sources": [
        "src/addon.cc",
        "src/cgroup.cc",
        "src/errors.cc",
        "src/object.cc",
        "src/map.cc",
        "src/netns.cc",
        "src/tc.cc",
        "src/ringbuf.cc",
        "src/test_run.cc",
        "src/rtnl.cc",
        "src/sockdiag.cc"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}
