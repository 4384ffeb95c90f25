#include "error.h"
#include <cstdint>

#include <cuda_runtime_api.h>

#include "driver.h"

namespace ms {
namespace {
thread_local std::string t_message;
thread_local std::string t_argument;
}  // namespace

void clear_last_error() {
  t_message.clear();
  t_argument.clear();
}

void set_last_error(ms_status_t status, const std::string& argument, const std::string& message) {
  (void)status;
  t_argument = argument;
  t_message = message;
}

void fail(ms_status_t status, const char* argument, const char* format, ...) {
  char buffer[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  throw Error(status, argument ? argument : "", buffer);
}

void check_cuda(int cuda_status, const char* what) {
  if (cuda_status != cudaSuccess) {
    auto status = static_cast<cudaError_t>(cuda_status);
    fail(MS_ERR_CUDA, "", "%s: %s (%s)", what, cudaGetErrorName(status), cudaGetErrorString(status));
  }
}

void require_current_context() {
  const Driver& driver = Driver::get();
  if (!driver.ctx_get_current)
    fail(MS_ERR_CUDA, "stream", "the CUDA driver library (libcuda) could not be loaded: %s", driver.load_error.c_str());
  void* context = nullptr;
  int result = driver.ctx_get_current(&context);
  if (result != 0 || context == nullptr)
    fail(MS_ERR_CUDA, "stream", "no current CUDA context on this thread (driver status %d): bind the caller's context "
         "(ILGPU: BindScoped) first", result);
}

void require_current_context(void* stream) {
  require_current_context();
  // The legacy and per-thread default streams (handles 0, 1, 2) always belong to the current context.
  if (reinterpret_cast<uintptr_t>(stream) <= 2) return;
  using StreamGetCtx = int (*)(void*, void**);
  static StreamGetCtx stream_get_ctx = reinterpret_cast<StreamGetCtx>(Driver::get().symbol("cuStreamGetCtx"));
  if (!stream_get_ctx) return;  // a driver without it: the launch itself will fail on a foreign stream
  void* current = nullptr;
  void* owner = nullptr;
  Driver::get().ctx_get_current(&current);
  int result = stream_get_ctx(stream, &owner);
  if (result != 0)
    fail(MS_ERR_INVALID_ARGUMENT, "stream", "stream: not a valid CUDA stream (cuStreamGetCtx status %d)", result);
  if (owner != current)
    fail(MS_ERR_INVALID_ARGUMENT, "stream", "stream: it belongs to another CUDA context (another device, or another context of "
         "this one) than the one current on this thread; make the stream's context current first");
}

}  // namespace ms

extern "C" {
MS_API const char* ms_last_error_message(void) { return ms::t_message.c_str(); }
MS_API const char* ms_last_error_argument(void) { return ms::t_argument.c_str(); }
}
