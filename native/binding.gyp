# Built by `npm ci` through the package's "install" script (node-gyp rebuild --directory=native).
# NIXL is optional: detect-nixl.cjs prints its flags when `pkg-config nixl` or NIXL_PREFIX finds
# it (and native/src/backend_nixl.cc exists); otherwise the shm-only addon is built.
# CUDA likewise: detect-cuda.cjs finds the toolkit and the "cuda" backend is compiled in.
{
  "variables": {
    "with_nixl%": "<!(node detect-nixl.cjs --found)",
    "with_cuda%": "<!(node detect-cuda.cjs --found)",
    "xferstate_asan%": 0,
  },
  "targets": [
    {
      "target_name": "xferstate_native",
      "sources": [
        "src/addon.cc",
        "src/backend_registry.cc",
        "src/backend_shm.cc",
        "src/shm_segment.cc",
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-O3"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-std=c++20", "-O2", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-lrt", "-pthread"],
      "conditions": [
        ["with_nixl==1", {
          "defines": ["XFERSTATE_WITH_NIXL"],
          "sources": ["src/backend_nixl.cc"],
          "cflags_cc": ["<!@(node detect-nixl.cjs --cflags)"],
          "libraries": ["<!@(node detect-nixl.cjs --libs)"],
        }],
        # CUDA is optional too: detect-cuda.cjs finds the toolkit (XFERSTATE_CUDA=0 skips it).
        # Kernels go through nvcc (the rule below); the host side is plain g++ against the
        # runtime headers, linked with the static runtime.
        ["with_cuda==1", {
          "defines": ["XFERSTATE_WITH_CUDA"],
          "sources": ["src/backend_cuda.cc", "src/backend_cuda_kernels.cu"],
          "include_dirs": ["<!(node detect-cuda.cjs --include)"],
          "libraries": ["<!@(node detect-cuda.cjs --libs)"],
          "rules": [{
            "rule_name": "nvcc",
            "extension": "cu",
            "inputs": ["<(RULE_INPUT_PATH)", "src/backend_cuda_kernels.h"],
            "outputs": ["<(INTERMEDIATE_DIR)/<(RULE_INPUT_ROOT).cu.o"],
            "action": ["<!(node detect-cuda.cjs --nvcc)", "-std=c++20", "-O3", "-Xcompiler", "-fPIC",
                       "-gencode", "arch=compute_90,code=[sm_90,compute_90]",
                       "-c", "<(RULE_INPUT_PATH)", "-o", "<(INTERMEDIATE_DIR)/<(RULE_INPUT_ROOT).cu.o"],
            "process_outputs_as_sources": 1,
            "message": "nvcc <(RULE_INPUT_PATH)",
          }],
        }],
        ["xferstate_asan==1", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g", "-O1"],
          "cflags_cc!": ["-O2"],
          "ldflags": ["-fsanitize=address,undefined"],
          "defines": ["XFERSTATE_ASAN"],
        }],
      ],
    },
  ],
}
