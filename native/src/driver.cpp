#include "driver.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace ms {
namespace {

void* open_driver(std::string& error) {
#if defined(_WIN32)
  void* handle = reinterpret_cast<void*>(LoadLibraryA("nvcuda.dll"));
  if (!handle) error = "LoadLibrary(nvcuda.dll) failed";
#else
  void* handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!handle) error = dlerror();
#endif
  return handle;
}

void* symbol(void* handle, const char* name) {
#if defined(_WIN32)
  return reinterpret_cast<void*>(GetProcAddress(reinterpret_cast<HMODULE>(handle), name));
#else
  return dlsym(handle, name);
#endif
}

Driver load() {
  Driver d;
  void* handle = open_driver(d.load_error);
  if (!handle) return d;
  d.handle = handle;
  d.ctx_get_current = reinterpret_cast<int (*)(void**)>(symbol(handle, "cuCtxGetCurrent"));
  d.ctx_get_device = reinterpret_cast<int (*)(int*)>(symbol(handle, "cuCtxGetDevice"));
  d.device_get_attribute = reinterpret_cast<int (*)(int*, int, int)>(symbol(handle, "cuDeviceGetAttribute"));
  if (!d.ctx_get_current || !d.ctx_get_device || !d.device_get_attribute) {
    d.load_error = "libcuda lacks cuCtxGetCurrent / cuCtxGetDevice / cuDeviceGetAttribute";
    d.ctx_get_current = nullptr;
  }
  return d;
}

}  // namespace

void* Driver::symbol(const char* name) const { return handle ? ms::symbol(handle, name) : nullptr; }

int Driver::multiprocessors() const {
  int device = 0, count = 0;
  const int kMultiprocessorCount = 16;  // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
  if (!ctx_get_device || ctx_get_device(&device) != 0 || device_get_attribute(&count, kMultiprocessorCount, device) != 0) return 0;
  return count;
}

const Driver& Driver::get() {
  static const Driver driver = load();  // thread-safe initialization
  return driver;
}

}  // namespace ms
