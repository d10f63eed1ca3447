// An owning, typed cudaMalloc'd array. Every copy and fill names the stream it is ordered on, the
// one the kernels that use the buffer run on: the backends' streams do not synchronise with the
// legacy default stream, so a plain cudaMemcpy or cudaMemset there could race with their kernels.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "cuda_check.hpp"

namespace cudaembed {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) { resize(count); }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }

  void resize(std::size_t count) {
    if (count == size_) return;
    CE_CUDA_CHECK(cudaFree(data_));
    data_ = nullptr;
    size_ = 0;
    if (count) CE_CUDA_CHECK(cudaMalloc(&data_, count * sizeof(T)));
    size_ = count;
  }
  // Resizes to `count` and copies host[0, count) in, after the stream's earlier work. From pageable
  // memory the call returns once the source is staged, so `host` may be reused at once.
  void upload(const T* host, std::size_t count, cudaStream_t stream) {
    resize(count);
    if (count) CE_CUDA_CHECK(cudaMemcpyAsync(data_, host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
  }
  void upload(const std::vector<T>& host, cudaStream_t stream) { upload(host.data(), host.size(), stream); }
  // Copies the first `count` elements out once the stream's earlier work is done; returns when
  // they are in `host`.
  void download(T* host, std::size_t count, cudaStream_t stream) const {
    if (!count) return;
    CE_CUDA_CHECK(cudaMemcpyAsync(host, data_, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
    CE_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  // Copies everything out, resizing `host` to fit.
  void download(std::vector<T>& host, cudaStream_t stream) const {
    host.resize(size_);
    download(host.data(), size_, stream);
  }
  void zero(cudaStream_t stream) {
    if (size_) CE_CUDA_CHECK(cudaMemsetAsync(data_, 0, size_ * sizeof(T), stream));
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

// An owning, typed page-locked host array (cudaMallocHost): a cudaMemcpyAsync into it returns at
// once and runs on its stream, where into pageable memory it would wait for the copy.
template <class T>
class PinnedBuffer {
 public:
  explicit PinnedBuffer(std::size_t count) : size_(count) {
    if (count) CE_CUDA_CHECK(cudaMallocHost(&data_, count * sizeof(T)));
  }
  ~PinnedBuffer() { cudaFreeHost(data_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace cudaembed
