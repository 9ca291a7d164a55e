// Finite-difference gradient checking shared by the layer and model tests.
//
// All checks run in double precision with central differences, f'(x) ~ (f(x+h) - f(x-h)) / 2h.
// Two error sources bound how well a correct gradient can agree:
// - truncation, O(h^2 f'''): with h = 1e-6 about 1e-12 relative;
// - rounding of the loss itself: each evaluation is off by a few ulps of |L| per sqrt(terms summed), so
//   the difference quotient carries an absolute noise of about noise_ulps * 2^-52 * |L| / h.
// An entry passes when |analytic - numeric| <= relative_tolerance * max(|analytic|, |numeric|) + noise.
// Wrong backward code (a missing factor, a transposed index, a dropped path) gives errors of order 1,
// far above both terms.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "capsnet/random.hpp"

namespace capsnet_test {

struct FdOptions {
    double step = 1e-6;
    double relative_tolerance = 1e-6;
    double noise_ulps = 64;  // bound on the loss's rounding error, in ulps of |L|
};

template <class E>
bool shape_is(const E& tensor, const std::vector<std::size_t>& expected) {
    return std::vector<std::size_t>(tensor.shape().begin(), tensor.shape().end()) == expected;
}

// Fills a tensor with values drawn uniformly from [low, high).
template <class E>
void fill_random(E& tensor, capsnet::Rng& rng, double low = -1, double high = 1) {
    for (auto& x : tensor) x = static_cast<typename E::value_type>(rng.uniform(low, high));
}

// sum(output * projection): a scalar loss whose gradient with respect to `output` is `projection`, so a
// layer's backward pass can be fed a random output gradient and checked against this loss.
template <class E, class R>
double projected(const E& output, const R& projection) {
    REQUIRE(output.shape() == projection.shape());
    double sum = 0;
    for (std::size_t i = 0; i < output.size(); ++i) sum += output.data()[i] * projection.data()[i];
    return sum;
}

// Numerical derivative of loss() with respect to `x`, restoring x afterwards.
template <class T>
double numeric_derivative(T& x, const std::function<double()>& loss, double step) {
    const T saved = x;
    x = saved + step;
    const double plus = loss();
    x = saved - step;
    const double minus = loss();
    x = saved;
    return (plus - minus) / (2 * step);
}

// Checks `count` entries of `tensor` (all when count >= size), chosen at random, against `analytic`.
template <class E, class G>
void check_tensor_gradient(const std::string& name, E& tensor, const G& analytic, const std::function<double()>& loss,
                           std::size_t count, capsnet::Rng& rng, const FdOptions& options = {}) {
    REQUIRE(tensor.size() == analytic.size());
    const double noise =
        options.noise_ulps * std::numeric_limits<double>::epsilon() * std::abs(loss()) / options.step;
    const bool all = count >= tensor.size();
    const std::size_t n = all ? tensor.size() : count;
    std::size_t failures = 0;
    double worst = 0;
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = all ? k : rng.below(tensor.size());
        const double numeric = numeric_derivative(tensor.data()[i], loss, options.step);
        const double a = analytic.data()[i];
        const double error = std::abs(a - numeric);
        const double allowed = options.relative_tolerance * std::max(std::abs(a), std::abs(numeric)) + noise;
        worst = std::max(worst, error / allowed);
        if (error > allowed) {
            ++failures;
            if (failures <= 5) UNSCOPED_INFO(name << "[" << i << "]: analytic " << a << " numeric " << numeric);
        }
    }
    INFO(name << ": " << failures << " of " << n << " entries disagree; worst error / allowed = " << worst);
    CHECK(failures == 0);
}

}  // namespace capsnet_test
