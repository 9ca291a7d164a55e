// An owning, typed array in GPU memory. Copies to and from the host are checked; moving transfers
// ownership; copying is disabled so an accidental copy never duplicates hundreds of MB.
//
// Streams: GpuContext's stream is non-blocking, so it does NOT wait for work on the legacy default
// stream. The plain upload / download / zero are therefore fully synchronous (the device is drained
// before and after), safe at load time and in tests; in a training step use the *_async overloads on
// the context's stream, which order with the kernels on that stream.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "capsnet/error.hpp"
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

    // Grows to at least `count` elements and never shrinks, so a smaller batch after a larger one (the
    // last batch of an epoch, an evaluation batch) reuses the memory, and a training step allocates, and
    // synchronises, only the first time it meets a larger size. Work queued on `stream` may still use the
    // old allocation, so the stream is drained before it is freed. The contents are undefined after growing.
    void reserve(std::size_t count, cudaStream_t stream) {
        if (count <= size_) return;
        CAPSNET_CUDA_CHECK(cudaStreamSynchronize(stream));
        resize(count);
    }

    // Reallocates whenever the size changes; the contents are then undefined.
    void resize(std::size_t count) {
        if (count == size_) return;
        release();
        if (count > 0) CAPSNET_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)));
        size_ = count;
    }
    void upload(const T* host, std::size_t count) {
        resize(count);
        CAPSNET_CUDA_CHECK(cudaDeviceSynchronize());
        if (count > 0) CAPSNET_CUDA_CHECK(cudaMemcpy(data_, host, count * sizeof(T), cudaMemcpyHostToDevice));
        CAPSNET_CUDA_CHECK(cudaDeviceSynchronize());
    }
    void upload(const std::vector<T>& host) { upload(host.data(), host.size()); }
    void download(T* host) const {
        CAPSNET_CUDA_CHECK(cudaDeviceSynchronize());
        if (size_ > 0) CAPSNET_CUDA_CHECK(cudaMemcpy(host, data_, size_ * sizeof(T), cudaMemcpyDeviceToHost));
    }
    std::vector<T> to_host() const {
        std::vector<T> host(size_);
        download(host.data());
        return host;
    }
    void zero() {
        if (size_ > 0) CAPSNET_CUDA_CHECK(cudaMemset(data_, 0, size_ * sizeof(T)));
        CAPSNET_CUDA_CHECK(cudaDeviceSynchronize());
    }

    // Ordered on `stream`: the host buffer must stay valid (and, for downloads, unread) until the
    // stream is synchronised. Pinned host memory makes these truly asynchronous.
    void upload_async(const T* host, std::size_t count, cudaStream_t stream) {
        resize(count);
        if (count > 0) CAPSNET_CUDA_CHECK(cudaMemcpyAsync(data_, host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
    }
    void download_async(T* host, std::size_t count, cudaStream_t stream) const {
        if (count > size_) throw Error("DeviceBuffer::download_async: " + std::to_string(count) + " elements from a buffer of " + std::to_string(size_));
        if (count > 0) CAPSNET_CUDA_CHECK(cudaMemcpyAsync(host, data_, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
    }
    void zero_async(cudaStream_t stream) {
        if (size_ > 0) CAPSNET_CUDA_CHECK(cudaMemsetAsync(data_, 0, size_ * sizeof(T), stream));
    }
    void zero(cudaStream_t stream) { zero_async(stream); }

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
