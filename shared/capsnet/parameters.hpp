// The model's parameters, named and shaped as in docs/model-contract.md (PyTorch names and layouts), their
// initialisation, and a visitor that walks several Parameters side by side (weights, gradients, Adam
// moments...) so no list of tensors is ever written twice.
#pragma once

#include <cstddef>
#include <type_traits>

#include "capsnet/common.hpp"
#include "capsnet/config.hpp"
#include "capsnet/random.hpp"

namespace capsnet {

template <class T>
struct Parameters {
    Tensor<T, 4> conv1_weight;     // [256, 1, 9, 9]
    Tensor<T, 1> conv1_bias;       // [256]
    Tensor<T, 4> primary_weight;   // [256, 256, 9, 9]
    Tensor<T, 1> primary_bias;     // [256]
    Tensor<T, 4> digit_weight;     // [1152, 10, 16, 8] paper, [32, 10, 16, 8] seed
    Tensor<T, 3> digit_bias;       // [32, 10, 16] seed; empty in paper
    Tensor<T, 2> decoder0_weight;  // [512, 160]
    Tensor<T, 1> decoder0_bias;
    Tensor<T, 2> decoder1_weight;  // [1024, 512]
    Tensor<T, 1> decoder1_bias;
    Tensor<T, 2> decoder2_weight;  // [784, 1024]
    Tensor<T, 1> decoder2_bias;
};

namespace detail {
// Whether a visited member holds values: tensors when not empty; other members (offsets) never.
template <class X>
bool holds_values(const X& member) {
    if constexpr (std::is_arithmetic_v<X>) return false;
    else return member.size() > 0;
}
}  // namespace detail

// Calls f(name, first.tensor, rest.tensor...) for every tensor, in the order of docs/model-contract.md.
// digit.bias (the seed preset's: has_digit_bias) is visited when any argument holds one, so copying into
// an empty Parameters copies it too; a visitor handed Parameters of two presets meets one empty digit.bias
// and must compare shapes (the loaders and backends do, and refuse).
template <class F, class First, class... Rest>
void visit_parameters(F&& f, First& first, Rest&... rest) {
    f("conv1.weight", first.conv1_weight, rest.conv1_weight...);
    f("conv1.bias", first.conv1_bias, rest.conv1_bias...);
    f("primary.weight", first.primary_weight, rest.primary_weight...);
    f("primary.bias", first.primary_bias, rest.primary_bias...);
    f("digit.weight", first.digit_weight, rest.digit_weight...);
    if (detail::holds_values(first.digit_bias) || (detail::holds_values(rest.digit_bias) || ...))
        f("digit.bias", first.digit_bias, rest.digit_bias...);
    f("decoder.0.weight", first.decoder0_weight, rest.decoder0_weight...);
    f("decoder.0.bias", first.decoder0_bias, rest.decoder0_bias...);
    f("decoder.1.weight", first.decoder1_weight, rest.decoder1_weight...);
    f("decoder.1.bias", first.decoder1_bias, rest.decoder1_bias...);
    f("decoder.2.weight", first.decoder2_weight, rest.decoder2_weight...);
    f("decoder.2.bias", first.decoder2_bias, rest.decoder2_bias...);
}

// All tensors shaped for the config's preset and filled with zeros (gradients, Adam moments).
template <class T>
Parameters<T> parameters_zeros(const Config& config);

// Fresh parameters drawn with the config's InitScheme.
template <class T>
Parameters<T> parameters_init(const Config& config, Rng& rng);

template <class T>
std::size_t parameter_count(const Parameters<T>& params);

template <class T>
void parameters_fill_zero(Parameters<T>& params);

template <class To, class From>
Parameters<To> parameters_cast(const Parameters<From>& params) {
    Parameters<To> out;
    visit_parameters([](const char*, auto& dst, const auto& src) { dst = xt::cast<To>(src); }, out, params);
    return out;
}

}  // namespace capsnet
