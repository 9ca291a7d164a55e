// An owning, typed array in GPU memory. Copies to and from the host are checked; moving transfers
// ownership; copying is disabled so an accidental copy never duplicates hundreds of MB.
#pragma once

#include <cstddef>
#include <vector>

#include "cuda_check.hpp"

namespace capsnet::cuda {

template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t count) { resize(count); }
    ~DeviceBuffer() { release(); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& other) noexcept : data_(other.data_), size_(other.size_) {
        other.data_ = nullptr;
        other.size_ = 0;
    }
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
        if (this != &other) {
            release();
            data_ = other.data_;
            size_ = other.size_;
            other.data_ = nullptr;
            other.size_ = 0;
        }
        return *this;
    }

    // Reallocates only when the size changes; the contents are then undefined.
    void resize(std::size_t count) {
        if (count == size_) return;
        release();
        if (count > 0) CAPSNET_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)));
        size_ = count;
    }
    void upload(const T* host, std::size_t count) {
        resize(count);
        if (count > 0) CAPSNET_CUDA_CHECK(cudaMemcpy(data_, host, count * sizeof(T), cudaMemcpyHostToDevice));
    }
    void upload(const std::vector<T>& host) { upload(host.data(), host.size()); }
    void download(T* host) const {
        if (size_ > 0) CAPSNET_CUDA_CHECK(cudaMemcpy(host, data_, size_ * sizeof(T), cudaMemcpyDeviceToHost));
    }
    std::vector<T> to_host() const {
        std::vector<T> host(size_);
        download(host.data());
        return host;
    }
    void zero(cudaStream_t stream = nullptr) {
        if (size_ > 0) CAPSNET_CUDA_CHECK(cudaMemsetAsync(data_, 0, size_ * sizeof(T), stream));
    }

    T* data() { return data_; }
    const T* data() const { return data_; }
    std::size_t size() const { return size_; }

private:
    void release() {
        if (data_) cudaFree(data_);  // no check: called from the destructor, where throwing is not allowed
        data_ = nullptr;
        size_ = 0;
    }
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace capsnet::cuda
