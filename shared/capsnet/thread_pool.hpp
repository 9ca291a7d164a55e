// A fixed set of worker threads that live as long as the pool, so a training step does not start and
// join threads (and the threads keep their thread_local scratch buffers, the GEMM's packing space
// among them, from one step to the next).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace capsnet {

class ThreadPool {
public:
    explicit ThreadPool(int threads);  // threads - 1 workers: the calling thread is the first
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Runs job(0) .. job(count - 1), count <= size(), job 0 on the calling thread and job k on worker k,
    // and returns when all are done, rethrowing the exception of the lowest-numbered job that threw.
    void run(int count, const std::function<void(int)>& job);

private:
    void work(int index);

    std::mutex mutex_;
    std::condition_variable start_, finished_;
    const std::function<void(int)>* job_ = nullptr;
    int count_ = 0;
    int running_ = 0;
    std::uint64_t generation_ = 0;  // one per run(), so a worker never runs the same job twice
    bool stopping_ = false;
    std::vector<std::exception_ptr> errors_;
    std::vector<std::thread> workers_;
};

}  // namespace capsnet
