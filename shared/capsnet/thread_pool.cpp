// A fixed set of worker threads (see thread_pool.hpp).
#include "capsnet/thread_pool.hpp"

#include <algorithm>

#include "capsnet/error.hpp"

namespace capsnet {

ThreadPool::ThreadPool(int threads) : errors_(static_cast<std::size_t>(std::max(1, threads))) {
    for (int k = 1; k < threads; ++k) workers_.emplace_back([this, k] { work(k); });
}

ThreadPool::~ThreadPool() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    start_.notify_all();
    for (auto& worker : workers_) worker.join();
}

void ThreadPool::work(int index) {
    std::uint64_t seen = 0;
    for (;;) {
        const std::function<void(int)>* job = nullptr;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            if (stopping_) return;
            seen = generation_;
            if (index >= count_) continue;  // this run needs fewer threads
            job = job_;
        }
        try {
            (*job)(index);
        } catch (...) {
            errors_[static_cast<std::size_t>(index)] = std::current_exception();
        }
        const std::lock_guard<std::mutex> lock(mutex_);
        if (--running_ == 0) finished_.notify_one();
    }
}

void ThreadPool::run(int count, const std::function<void(int)>& job) {
    if (count > size()) throw Error("thread pool: " + std::to_string(count) + " jobs for " + std::to_string(size()) + " threads");
    if (count <= 0) return;
    std::fill(errors_.begin(), errors_.end(), nullptr);
    if (count > 1) {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            job_ = &job;
            count_ = count;
            running_ = count - 1;
            ++generation_;
        }
        start_.notify_all();
    }
    try {
        job(0);
    } catch (...) {
        errors_[0] = std::current_exception();
    }
    if (count > 1) {
        std::unique_lock<std::mutex> lock(mutex_);
        finished_.wait(lock, [&] { return running_ == 0; });
    }
    for (const auto& error : errors_)
        if (error) std::rethrow_exception(error);
}

}  // namespace capsnet
