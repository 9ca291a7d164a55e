// A small deterministic random generator (xoshiro256** seeded by splitmix64).
// The standard <random> distributions are implementation-defined, so libstdc++ (native) and libc++
// (Emscripten) would draw different numbers from the same seed; this one gives the same stream on every
// target, which keeps initialisation and augmentation reproducible across the native and wasm builds.
#pragma once

#include <cmath>
#include <cstdint>

namespace capsnet {

class Rng {
public:
    explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

    void reseed(std::uint64_t seed) {
        for (auto& word : state_) word = splitmix64(seed);
    }

    std::uint64_t next_u64() {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

    // Uniform in [0, 1) with 53 random bits.
    double uniform01() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

    double uniform(double low, double high) { return low + (high - low) * uniform01(); }

    // Uniform integer in [0, bound) without modulo bias (Lemire's rejection is overkill here; the bound
    // is tiny compared with 2^64, so the bias of a plain modulo is below 1e-17).
    std::uint64_t below(std::uint64_t bound) { return next_u64() % bound; }

    // Standard normal via Box-Muller; one value per call keeps the stream simple to reason about.
    double normal() {
        double u1 = uniform01();
        while (u1 <= 0.0) u1 = uniform01();
        const double u2 = uniform01();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }

    // The full state, so a checkpoint can resume the exact stream.
    const std::uint64_t* state() const { return state_; }
    void set_state(const std::uint64_t* words) {
        for (int i = 0; i < 4; ++i) state_[i] = words[i];
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix64(std::uint64_t& x) {
        std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    std::uint64_t state_[4];
};

// A seed for stream (a, b) of a run seeded with `seed`: the training driver gives each epoch's shuffle
// and each batch's augmentation its own stream, so resuming mid-epoch needs no generator state, only
// the (epoch, step) position. splitmix64's finaliser decorrelates nearby inputs.
inline std::uint64_t derived_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0) {
    auto mix = [](std::uint64_t z) {
        z += 0x9e3779b97f4a7c15ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    };
    return mix(mix(mix(seed) ^ a) ^ (b * 0xd6e8feb86659fd93ULL));
}

}  // namespace capsnet
