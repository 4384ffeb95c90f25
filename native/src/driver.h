// The few CUDA driver functions the library needs, loaded at run time so that libmicroscale loads (and reports its ABI)
// on machines without a GPU driver; the runtime (cudart) is linked statically.
#pragma once
#include <string>

namespace ms {

struct Driver {
  int (*ctx_get_current)(void** context) = nullptr;
  int (*ctx_get_device)(int* device) = nullptr;
  int (*device_get_attribute)(int* value, int attribute, int device) = nullptr;
  std::string load_error;
  void* handle = nullptr;

  // Any other driver entry point by name (nullptr when the driver is missing or lacks it).
  void* symbol(const char* name) const;
  // Multiprocessor count of the current context's device (0 when unknown).
  int multiprocessors() const;

  static const Driver& get();
};

}  // namespace ms
