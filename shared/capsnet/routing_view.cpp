// The routing view: plain loops over one sample (1152 x 10 x 16 values), a few hundred microseconds.
#include "capsnet/routing_view.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "capsnet/visualize.hpp"

namespace capsnet {

static_assert(primary_field_start(primary_side - 1) + primary_field_side == image_side - 1,
              "the last primary cell's field ends at row 26, so row 27 is in no field");

RoutingTrace routing_trace(const ForwardState<float>& state, std::size_t sample) {
    const Tensor<float, 4>& u_hat = state.u_hat;
    const RoutingState<float>& routing = state.routing;
    const std::size_t B = u_hat.shape(0), I = u_hat.shape(1), J = u_hat.shape(2), D = u_hat.shape(3);
    const std::size_t R = routing.coupling.shape(0);
    if (sample >= B)
        throw Error("routing view: sample " + std::to_string(sample) + " of a batch of " + std::to_string(B));
    if (R == 0 || routing.coupling.shape(1) != B || routing.coupling.shape(2) != I || routing.coupling.shape(3) != J ||
        routing.v.shape(0) != R || routing.v.shape(1) != B || routing.v.shape(2) != J || routing.v.shape(3) != D)
        throw Error("routing view: the forward state's routing does not match its predictions");

    RoutingTrace trace;
    trace.coupling.resize({R, I, J});
    trace.logits.resize({R, I, J});
    trace.lengths.resize({R, J});
    trace.prediction_lengths.resize({I, J});
    const float* uh = u_hat.data() + sample * I * J * D;
    for (std::size_t k = 0; k < I * J; ++k) {
        float norm2 = 0;
        for (std::size_t d = 0; d < D; ++d) norm2 += uh[k * D + d] * uh[k * D + d];
        trace.prediction_lengths.data()[k] = std::sqrt(norm2);
    }
    for (std::size_t r = 0; r < R; ++r) {
        std::copy_n(routing.coupling.data() + (r * B + sample) * I * J, I * J, trace.coupling.data() + r * I * J);
        const float* v = routing.v.data() + (r * B + sample) * J * D;
        for (std::size_t j = 0; j < J; ++j) {
            float norm2 = 0;
            for (std::size_t d = 0; d < D; ++d) norm2 += v[j * D + d] * v[j * D + d];
            trace.lengths(r, j) = std::sqrt(norm2);
        }
        float* b = trace.logits.data() + r * I * J;
        if (r == 0) {
            std::fill(b, b + I * J, 0.0f);
            continue;
        }
        // b_r = b_{r-1} + u_hat . v_{r-1}: the agreement routing.cpp adds after iteration r-1.
        const float* previous_b = b - I * J;
        const float* previous_v = routing.v.data() + ((r - 1) * B + sample) * J * D;
        for (std::size_t i = 0; i < I; ++i)
            for (std::size_t j = 0; j < J; ++j) {
                const float* u = uh + (i * J + j) * D;
                float agreement = 0;
                for (std::size_t d = 0; d < D; ++d) agreement += u[d] * previous_v[j * D + d];
                b[i * J + j] = previous_b[i * J + j] + agreement;
            }
    }
    return trace;
}

Tensor<float, 4> routing_attribution(const RoutingTrace& trace, const Tensor<float, 2>& image) {
    const std::size_t R = trace.coupling.shape(0), I = trace.coupling.shape(1), J = trace.coupling.shape(2);
    const std::size_t side = image_side, grid = primary_side, cells = primary_grid;
    if (I != std::size_t(primary_capsules) || image.shape(0) != side || image.shape(1) != side)
        throw Error("routing attribution: expected 1152 capsules and a 28x28 image");
    const std::size_t types = I / cells;
    const float field_area = float(primary_field_side * primary_field_side);
    Tensor<float, 4> attribution = xt::zeros<float>({R, J, side, side});
    std::vector<float> cell_vote(cells);
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t j = 0; j < J; ++j) {
            // The votes of the 32 capsules of a grid cell all cover the same field: add them up first.
            std::fill(cell_vote.begin(), cell_vote.end(), 0.0f);
            for (std::size_t t = 0; t < types; ++t)
                for (std::size_t g = 0; g < cells; ++g) {
                    const std::size_t i = t * cells + g;
                    cell_vote[g] += trace.coupling(r, i, j) * trace.prediction_lengths(i, j);
                }
            float* map = &attribution(r, j, 0, 0);
            for (std::size_t y = 0; y < grid; ++y)
                for (std::size_t x = 0; x < grid; ++x) {
                    const float share = cell_vote[y * grid + x] / field_area;
                    const std::size_t top = primary_field_start(int(y)), left = primary_field_start(int(x));
                    for (std::size_t py = top; py < top + primary_field_side; ++py)
                        for (std::size_t px = left; px < left + primary_field_side; ++px) map[py * side + px] += share;
                }
            for (std::size_t p = 0; p < side * side; ++p) map[p] *= image.data()[p];
        }
    return attribution;
}

Tensor<float, 4> routing_attribution_normalized(const Tensor<float, 4>& attribution) {
    Tensor<float, 4> normalized = attribution;
    const std::size_t R = attribution.shape(0), per_iteration = attribution.size() / std::max<std::size_t>(R, 1);
    for (std::size_t r = 0; r < R; ++r) {
        float* values = normalized.data() + r * per_iteration;
        const float top = *std::max_element(values, values + per_iteration);
        if (!(top > 0)) continue;  // blank input: nothing voted, keep the zeros
        for (std::size_t k = 0; k < per_iteration; ++k) values[k] /= top;
    }
    return normalized;
}

RoutingView routing_view(const ForwardState<float>& state, std::size_t sample) {
    RoutingView view;
    view.trace = routing_trace(state, sample);
    if (state.images.shape(0) <= sample || state.images.shape(1) != 1 || state.images.shape(2) != std::size_t(image_side) ||
        state.images.shape(3) != std::size_t(image_side))
        throw Error("routing view: the forward state holds no 28x28 image for the sample");
    Tensor<float, 2> image = xt::zeros<float>({std::size_t(image_side), std::size_t(image_side)});
    std::copy_n(state.images.data() + sample * image_pixels, image_pixels, image.data());
    view.attribution = routing_attribution(view.trace, image);
    view.attribution_normalized = routing_attribution_normalized(view.attribution);
    return view;
}

Tensor<float, 2> routing_heatmap(const Tensor<float, 3>& per_capsule, int iteration, int digit, float gap_value) {
    const std::size_t R = per_capsule.shape(0), I = per_capsule.shape(1), J = per_capsule.shape(2);
    if (I != std::size_t(primary_capsules)) throw Error("routing heatmap: expected 1152 capsules");
    if (iteration < 0 || std::size_t(iteration) >= R || digit < 0 || std::size_t(digit) >= J)
        throw Error("routing heatmap: iteration " + std::to_string(iteration) + " or class " + std::to_string(digit) +
                    " out of range");
    // [4, 8, 36]: type t's 6x6 grid at tile (t / 8, t % 8); tile_images lays them out with the gaps.
    Tensor<float, 3> tiles = xt::zeros<float>({std::size_t(routing_heatmap_tile_rows),
                                               std::size_t(routing_heatmap_tile_columns), std::size_t(primary_grid)});
    for (std::size_t i = 0; i < I; ++i) tiles.data()[i] = per_capsule(std::size_t(iteration), i, std::size_t(digit));
    return tile_images(tiles, primary_side, routing_heatmap_gap, gap_value);
}

namespace {

// The ramp in unrounded 0..255 values, so the overlay blends before it rounds.
std::array<float, 3> ramp_values(float value) {
    static const float stops[4][3] = {{120, 28, 109}, {212, 72, 66}, {251, 155, 6}, {252, 255, 164}};
    const float position = std::clamp(value, 0.0f, 1.0f) * 3;
    const int low = std::min(2, static_cast<int>(position));
    const float t = position - low;
    std::array<float, 3> colour{};
    for (int k = 0; k < 3; ++k) colour[k] = stops[low][k] + t * (stops[low + 1][k] - stops[low][k]);
    return colour;
}

std::uint8_t channel(float value) { return static_cast<std::uint8_t>(std::lround(std::clamp(value, 0.0f, 255.0f))); }

}  // namespace

Rgb routing_ramp(float value) {
    const std::array<float, 3> colour = ramp_values(value);
    return {channel(colour[0]), channel(colour[1]), channel(colour[2])};
}

Rgb routing_overlay_pixel(float ink, float attribution) {
    const float a = std::clamp(attribution, 0.0f, 1.0f), alpha = std::min(1.0f, 5 * a);
    const float grey = 0.5f * 255 * std::clamp(ink, 0.0f, 1.0f);
    const std::array<float, 3> colour = ramp_values(a);
    return {channel((1 - alpha) * grey + alpha * colour[0]), channel((1 - alpha) * grey + alpha * colour[1]),
            channel((1 - alpha) * grey + alpha * colour[2])};
}

}  // namespace capsnet
