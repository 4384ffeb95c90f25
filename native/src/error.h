// Error handling at the C ABI: a thread-local record, one exception type, and the macros every extern "C" body uses.
#pragma once
#include <cstdarg>
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include "microscale.h"

namespace ms {

// A failure with a status and the argument it concerns; thrown inside the library, never across the ABI.
class Error : public std::exception {
 public:
  Error(ms_status_t status, std::string argument, std::string message)
      : status_(status), argument_(std::move(argument)), message_(std::move(message)) {}
  ms_status_t status() const { return status_; }
  const std::string& argument() const { return argument_; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  ms_status_t status_;
  std::string argument_;
  std::string message_;
};

void clear_last_error();
void set_last_error(ms_status_t status, const std::string& argument, const std::string& message);

// printf-style message with the argument's name and the actual values.
[[noreturn]] void fail(ms_status_t status, const char* argument, const char* format, ...);

// Throws MS_ERR_CUDA naming the call, for a CUDA runtime status (cudaError_t passed as int).
void check_cuda(int cuda_status, const char* what);

// Throws unless the calling thread has a current CUDA context (we never create one).
void require_current_context();
// The same, and `stream` (a CUstream / cudaStream_t, 0 for the legacy default) belongs to that context.
void require_current_context(void* stream);

}  // namespace ms

#define MS_API_BEGIN try { ms::clear_last_error();
#define MS_API_END                                                                           \
  return MS_OK;                                                                              \
  } catch (const ms::Error& e) {                                                             \
    ms::set_last_error(e.status(), e.argument(), e.what());                                  \
    return e.status();                                                                       \
  } catch (const std::bad_alloc&) {                                                          \
    ms::set_last_error(MS_ERR_OUT_OF_MEMORY, "", "host allocation failed");                  \
    return MS_ERR_OUT_OF_MEMORY;                                                             \
  } catch (const std::exception& e) {                                                        \
    ms::set_last_error(MS_ERR_INTERNAL, "", e.what());                                       \
    return MS_ERR_INTERNAL;                                                                  \
  } catch (...) {                                                                            \
    ms::set_last_error(MS_ERR_INTERNAL, "", "unknown exception");                            \
    return MS_ERR_INTERNAL;                                                                  \
  }

#define MS_CHECK_ARG(cond, arg, ...) \
  do { if (!(cond)) ms::fail(MS_ERR_INVALID_ARGUMENT, arg, __VA_ARGS__); } while (0)
