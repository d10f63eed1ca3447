// An owning, typed cudaMalloc'd array.
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
  // Resizes to `count` and copies host[0, count) in.
  void upload(const T* host, std::size_t count) {
    resize(count);
    if (count) CE_CUDA_CHECK(cudaMemcpy(data_, host, count * sizeof(T), cudaMemcpyHostToDevice));
  }
  void upload(const std::vector<T>& host) { upload(host.data(), host.size()); }
  // Copies the first `count` elements out.
  void download(T* host, std::size_t count) const {
    if (count) CE_CUDA_CHECK(cudaMemcpy(host, data_, count * sizeof(T), cudaMemcpyDeviceToHost));
  }
  // Copies everything out, resizing `host` to fit.
  void download(std::vector<T>& host) const {
    host.resize(size_);
    download(host.data(), size_);
  }
  void zero() {
    if (size_) CE_CUDA_CHECK(cudaMemset(data_, 0, size_ * sizeof(T)));
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace cudaembed
