// Squash and dynamic routing. The loops are written per sample over raw rows of the xtensor containers:
// the sizes are tiny (10 classes, 16 dims) so plain loops that the compiler vectorises beat building
// broadcast expressions. The _reference versions read like the equations in routing.hpp, one loop per
// line of them; routing_forward / routing_backward compute the same sums in the same order but fuse
// the loops, so that each iteration reads u_hat (737 KB a sample, more than a core's L2) once.
#include "capsnet/routing.hpp"

#include "capsnet/config.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "capsnet/simd.hpp"

namespace capsnet {

template <class T>
void squash_forward(const T* s, T* v, std::size_t vectors, int dims) {
    for (std::size_t n = 0; n < vectors; ++n, s += dims, v += dims) {
        T norm2 = 0;
        for (int d = 0; d < dims; ++d) norm2 += s[d] * s[d];
        const T scale = norm2 > T(0) ? std::sqrt(norm2) / (T(1) + norm2) : T(0);
        for (int d = 0; d < dims; ++d) v[d] = scale * s[d];
    }
}

template <class T>
void squash_backward(const T* s, const T* v_grad, T* s_grad, std::size_t vectors, int dims) {
    for (std::size_t n = 0; n < vectors; ++n, s += dims, v_grad += dims, s_grad += dims) {
        T norm2 = 0, s_dot_g = 0;
        for (int d = 0; d < dims; ++d) {
            norm2 += s[d] * s[d];
            s_dot_g += s[d] * v_grad[d];
        }
        if (!(norm2 > T(0))) {
            for (int d = 0; d < dims; ++d) s_grad[d] = 0;
            continue;
        }
        // v = f(n2) s with f = sqrt(n2) / (1 + n2):  dv/ds = f I + 2 f'(n2) s s^T,
        // 2 f'(n2) = (1 - n2) / (sqrt(n2) (1 + n2)^2).
        const T norm = std::sqrt(norm2);
        const T one_plus = T(1) + norm2;
        const T f = norm / one_plus;
        const T radial = (T(1) - norm2) / (norm * one_plus * one_plus) * s_dot_g;
        for (int d = 0; d < dims; ++d) s_grad[d] = f * v_grad[d] + radial * s[d];
    }
}

namespace {

struct RoutingShape {
    int batch, inputs, classes, dims;
};

template <class T>
RoutingShape routing_shape(const Tensor<T, 4>& u_hat) {
    return {static_cast<int>(u_hat.shape(0)), static_cast<int>(u_hat.shape(1)), static_cast<int>(u_hat.shape(2)),
            static_cast<int>(u_hat.shape(3))};
}

// The shapes routing_forward writes: c, s and v of every iteration, and the output capsules.
template <class T>
void routing_outputs_resize(std::size_t R, std::size_t B, std::size_t I, std::size_t J, std::size_t D,
                            RoutingState<T>& state, Tensor<T, 3>& v) {
    state.coupling.resize({R, B, I, J});
    state.s.resize({R, B, J, D});
    state.v.resize({R, B, J, D});
    v.resize({B, J, D});
}

template <class T>
void softmax_rows(const T* logits, T* out, int rows, int cols) {
    for (int i = 0; i < rows; ++i, logits += cols, out += cols) {
        const T top = *std::max_element(logits, logits + cols);
        T sum = 0;
        for (int j = 0; j < cols; ++j) sum += (out[j] = std::exp(logits[j] - top));
        for (int j = 0; j < cols; ++j) out[j] /= sum;
    }
}

}  // namespace

template <class T>
void routing_forward_reference(const Tensor<T, 4>& u_hat, int iterations, RoutingState<T>& state, Tensor<T, 3>& v) {
    if (iterations < 1) throw Error("routing: at least one iteration is needed");
    const RoutingShape sh = routing_shape(u_hat);
    const std::size_t R = iterations, B = sh.batch, I = sh.inputs, J = sh.classes, D = sh.dims;
    routing_outputs_resize(R, B, I, J, D, state, v);
    std::vector<T> logits(I * J);
    for (std::size_t b = 0; b < B; ++b) {
        const T* uh = u_hat.data() + b * I * J * D;
        std::fill(logits.begin(), logits.end(), T(0));
        for (std::size_t r = 0; r < R; ++r) {
            T* c = state.coupling.data() + (r * B + b) * I * J;
            T* s = state.s.data() + (r * B + b) * J * D;
            T* vr = state.v.data() + (r * B + b) * J * D;
            softmax_rows(logits.data(), c, static_cast<int>(I), static_cast<int>(J));
            std::fill(s, s + J * D, T(0));
            for (std::size_t i = 0; i < I; ++i)
                for (std::size_t j = 0; j < J; ++j) {
                    const T cij = c[i * J + j];
                    const T* u = uh + (i * J + j) * D;
                    for (std::size_t d = 0; d < D; ++d) s[j * D + d] += cij * u[d];
                }
            squash_forward(s, vr, J, static_cast<int>(D));
            if (r + 1 == R) break;
            for (std::size_t i = 0; i < I; ++i)
                for (std::size_t j = 0; j < J; ++j) {
                    const T* u = uh + (i * J + j) * D;
                    T agreement = 0;
                    for (std::size_t d = 0; d < D; ++d) agreement += u[d] * vr[j * D + d];
                    logits[i * J + j] += agreement;
                }
        }
        std::copy_n(state.v.data() + ((R - 1) * B + b) * J * D, J * D, v.data() + b * J * D);
    }
}

template <class T>
void routing_backward_reference(const Tensor<T, 4>& u_hat, const RoutingState<T>& state, const Tensor<T, 3>& v_grad,
                                bool stop_gradient, Tensor<T, 4>& u_hat_grad) {
    const RoutingShape sh = routing_shape(u_hat);
    const std::size_t R = state.coupling.shape(0), B = sh.batch, I = sh.inputs, J = sh.classes, D = sh.dims;
    u_hat_grad.resize(u_hat.shape());
    u_hat_grad.fill(T(0));
    // logits_grad holds dL/db of iteration r+1 while iteration r is processed.
    std::vector<T> logits_grad(I * J), coupling_grad(I * J), vr_grad(J * D), s_grad(J * D);
    for (std::size_t b = 0; b < B; ++b) {
        const T* uh = u_hat.data() + b * I * J * D;
        T* guh = u_hat_grad.data() + b * I * J * D;
        std::fill(logits_grad.begin(), logits_grad.end(), T(0));
        for (std::size_t step = 0; step < R; ++step) {
            const std::size_t r = R - 1 - step;
            const T* c = state.coupling.data() + (r * B + b) * I * J;
            const T* s = state.s.data() + (r * B + b) * J * D;
            const T* vr = state.v.data() + (r * B + b) * J * D;
            if (r + 1 == R) {
                std::copy_n(v_grad.data() + b * J * D, J * D, vr_grad.data());
            } else {
                // b_ij(r+1) = b_ij(r) + u_hat_ij . v_j(r)
                std::fill(vr_grad.begin(), vr_grad.end(), T(0));
                for (std::size_t i = 0; i < I; ++i)
                    for (std::size_t j = 0; j < J; ++j) {
                        const T g = logits_grad[i * J + j];
                        const T* u = uh + (i * J + j) * D;
                        T* gu = guh + (i * J + j) * D;
                        for (std::size_t d = 0; d < D; ++d) {
                            vr_grad[j * D + d] += g * u[d];
                            gu[d] += g * vr[j * D + d];
                        }
                    }
            }
            squash_backward(s, vr_grad.data(), s_grad.data(), J, static_cast<int>(D));
            // s_j = sum_i c_ij u_hat_ij
            for (std::size_t i = 0; i < I; ++i)
                for (std::size_t j = 0; j < J; ++j) {
                    const T cij = c[i * J + j];
                    const T* u = uh + (i * J + j) * D;
                    T* gu = guh + (i * J + j) * D;
                    T dot = 0;
                    for (std::size_t d = 0; d < D; ++d) {
                        gu[d] += cij * s_grad[j * D + d];
                        dot += u[d] * s_grad[j * D + d];
                    }
                    coupling_grad[i * J + j] = dot;
                }
            // With stop_gradient the couplings are constants, so nothing flows into earlier iterations;
            // b(0) = 0 is a constant as well, so iteration 0 never needs the softmax backward.
            if (stop_gradient || r == 0) break;
            // c_i = softmax(b_i):  db_ij = c_ij (dc_ij - sum_k c_ik dc_ik), added to dL/db(r+1) because
            // b(r+1) = b(r) + agreement carries it through unchanged.
            for (std::size_t i = 0; i < I; ++i) {
                T weighted = 0;
                for (std::size_t j = 0; j < J; ++j) weighted += c[i * J + j] * coupling_grad[i * J + j];
                for (std::size_t j = 0; j < J; ++j)
                    logits_grad[i * J + j] += c[i * J + j] * (coupling_grad[i * J + j] - weighted);
            }
        }
    }
}


namespace {

// exp of n consecutive values, in whole SIMD batches from the first element, the rest one by one.
// The vector exp and std::exp differ in the last bit, so where they split must depend on n only, never
// on where the memory lies: xtensor's assignment starts its batches at the first aligned element of a
// temporary, and that made a run's bits depend on the heap (the resume test caught it).
template <class T>
void exp_inplace(T* x, std::size_t n) {
    using Batch = simd::batch<T>;
    std::size_t k = 0;
    for (; k + Batch::size <= n; k += Batch::size) simd::exp(Batch::load_unaligned(x + k)).store_unaligned(x + k);
    for (; k < n; ++k) x[k] = std::exp(x[k]);
}

// Operations on one capsule vector of D values. With the size known at compile time and a multiple of
// the SIMD width (16 in CapsNet), each is a few whole-vector instructions; left to itself the compiler
// unrolls these short loops and vectorises across capsules instead, with shuffles that made the
// routing slower than the plain loops. Dims == 0: the size is only known at run time.
template <class T, std::size_t Dims>
struct CapsuleOps {
    using Batch = simd::batch<T>;
    static constexpr std::size_t lanes = Batch::size;
    static constexpr bool vectorised = Dims > 0 && Dims % lanes == 0;

    // sum_d x[d] y[d]
    static T dot(const T* x, const T* y, std::size_t dims) {
        if constexpr (vectorised) {
            Batch acc = Batch::load_unaligned(x) * Batch::load_unaligned(y);
            for (std::size_t d = lanes; d < Dims; d += lanes)
                acc = simd::fma(Batch::load_unaligned(x + d), Batch::load_unaligned(y + d), acc);
            return simd::hadd(acc);
        } else {
            T sum = 0;
            for (std::size_t d = 0; d < dims; ++d) sum += x[d] * y[d];
            return sum;
        }
    }
    // y += a x
    static void add_scaled(T a, const T* x, T* y, std::size_t dims) {
        if constexpr (vectorised) {
            const Batch av(a);
            for (std::size_t d = 0; d < Dims; d += lanes)
                simd::fma(av, Batch::load_unaligned(x + d), Batch::load_unaligned(y + d)).store_unaligned(y + d);
        } else {
            for (std::size_t d = 0; d < dims; ++d) y[d] += a * x[d];
        }
    }
    // y = a x
    static void set_scaled(T a, const T* x, T* y, std::size_t dims) {
        if constexpr (vectorised) {
            const Batch av(a);
            for (std::size_t d = 0; d < Dims; d += lanes) (av * Batch::load_unaligned(x + d)).store_unaligned(y + d);
        } else {
            for (std::size_t d = 0; d < dims; ++d) y[d] = a * x[d];
        }
    }
};

// Rows of the logits that one step of the fused forward loop handles: their u_hat rows (16 x 10 x 16
// floats, 10 KB) stay in L1 between the agreement and the weighted sum, and their exps are one pass.
constexpr std::size_t routing_tile = 16;

// FixedDims > 0 makes the capsule size a compile-time constant (16 in CapsNet); 0 takes it from the
// tensor.
template <class T, std::size_t FixedDims>
void routing_forward_fused(const Tensor<T, 4>& u_hat, int iterations, RoutingState<T>& state, Tensor<T, 3>& v) {
    using Ops = CapsuleOps<T, FixedDims>;
    const RoutingShape sh = routing_shape(u_hat);
    const std::size_t R = iterations, B = sh.batch, I = sh.inputs, J = sh.classes;
    const std::size_t D = FixedDims ? FixedDims : std::size_t(sh.dims);
    routing_outputs_resize(R, B, I, J, D, state, v);
    std::vector<T> logits(I * J);
    for (std::size_t b = 0; b < B; ++b) {
        const T* uh = u_hat.data() + b * I * J * D;
        for (std::size_t r = 0; r < R; ++r) {
            T* c = state.coupling.data() + (r * B + b) * I * J;
            T* s = state.s.data() + (r * B + b) * J * D;
            const T* v_before = r > 0 ? state.v.data() + ((r - 1) * B + b) * J * D : nullptr;
            std::fill(s, s + J * D, T(0));
            for (std::size_t i0 = 0; i0 < I; i0 += routing_tile) {
                const std::size_t rows = std::min(routing_tile, I - i0);
                T* lg = logits.data() + i0 * J;
                T* ct = c + i0 * J;
                const T* ut = uh + i0 * J * D;
                if (r == 0) {
                    // b = 0: the softmax of zeros, 1 / J exactly as softmax_rows computes it.
                    std::fill(ct, ct + rows * J, T(1) / T(J));
                } else {
                    // The agreement that ended the previous iteration, b_ij += u_hat_ij . v_j, added
                    // here, where this row's u_hat is read anyway; then c = softmax(b) for the tile.
                    for (std::size_t k = 0; k < rows * J; ++k) {
                        const T agreement = Ops::dot(ut + k * D, v_before + (k % J) * D, D);
                        lg[k] = r == 1 ? agreement : lg[k] + agreement;  // b starts at 0
                    }
                    for (std::size_t i = 0; i < rows; ++i) {
                        const T top = *std::max_element(lg + i * J, lg + i * J + J);
                        for (std::size_t j = 0; j < J; ++j) ct[i * J + j] = lg[i * J + j] - top;
                    }
                    exp_inplace(ct, rows * J);
                    for (std::size_t i = 0; i < rows; ++i) {
                        T sum = 0;
                        for (std::size_t j = 0; j < J; ++j) sum += ct[i * J + j];
                        for (std::size_t j = 0; j < J; ++j) ct[i * J + j] /= sum;
                    }
                }
                for (std::size_t k = 0; k < rows * J; ++k) Ops::add_scaled(ct[k], ut + k * D, s + (k % J) * D, D);
            }
            squash_forward(s, state.v.data() + (r * B + b) * J * D, J, static_cast<int>(D));
        }
        std::copy_n(state.v.data() + ((R - 1) * B + b) * J * D, J * D, v.data() + b * J * D);
    }
}

template <class T, std::size_t FixedDims>
void routing_backward_fused(const Tensor<T, 4>& u_hat, const RoutingState<T>& state, const Tensor<T, 3>& v_grad,
                            bool stop_gradient, Tensor<T, 4>& u_hat_grad) {
    using Ops = CapsuleOps<T, FixedDims>;
    const RoutingShape sh = routing_shape(u_hat);
    const std::size_t R = state.coupling.shape(0), B = sh.batch, I = sh.inputs, J = sh.classes;
    const std::size_t D = FixedDims ? FixedDims : std::size_t(sh.dims);
    u_hat_grad.resize(u_hat.shape());
    // One pass over u_hat per iteration r, last to first, each row i doing two things of the reference:
    // (1) the weighted sum's backward for iteration r, ending in dL/db(r) for the row (softmax backward);
    // (2) with that, the agreement's backward for iteration r - 1 (b(r) = b(r-1) + u_hat . v(r-1)),
    //     which the reference does at the start of its next iteration.
    // Every element of u_hat_grad receives its terms in the reference's order.
    std::vector<T> logits_grad(I * J), coupling_grad(J), vr_grad(J * D), next_vr_grad(J * D), s_grad(J * D);
    for (std::size_t b = 0; b < B; ++b) {
        const T* uh = u_hat.data() + b * I * J * D;
        T* guh = u_hat_grad.data() + b * I * J * D;
        std::fill(logits_grad.begin(), logits_grad.end(), T(0));
        std::copy_n(v_grad.data() + b * J * D, J * D, vr_grad.data());
        for (std::size_t step = 0; step < R; ++step) {
            const std::size_t r = R - 1 - step;
            const T* c = state.coupling.data() + (r * B + b) * I * J;
            squash_backward(state.s.data() + (r * B + b) * J * D, vr_grad.data(), s_grad.data(), J, static_cast<int>(D));
            // With stop_gradient the couplings are constants, so nothing flows into earlier iterations;
            // b(0) = 0 is a constant as well, so iteration 0 never needs the softmax backward.
            const bool earlier = !stop_gradient && r > 0;
            const T* v_before = earlier ? state.v.data() + ((r - 1) * B + b) * J * D : nullptr;
            std::fill(next_vr_grad.begin(), next_vr_grad.end(), T(0));
            for (std::size_t i = 0; i < I; ++i) {
                const T* u = uh + i * J * D;
                T* gu = guh + i * J * D;
                // s_j = sum_i c_ij u_hat_ij; the last iteration is the first to write u_hat_grad.
                for (std::size_t j = 0; j < J; ++j) {
                    if (step == 0)
                        Ops::set_scaled(c[i * J + j], s_grad.data() + j * D, gu + j * D, D);
                    else
                        Ops::add_scaled(c[i * J + j], s_grad.data() + j * D, gu + j * D, D);
                    coupling_grad[j] = Ops::dot(u + j * D, s_grad.data() + j * D, D);
                }
                if (!earlier) continue;
                // c_i = softmax(b_i): db_ij = c_ij (dc_ij - sum_k c_ik dc_ik), added to dL/db(r+1).
                T* g = logits_grad.data() + i * J;
                T weighted = 0;
                for (std::size_t j = 0; j < J; ++j) weighted += c[i * J + j] * coupling_grad[j];
                for (std::size_t j = 0; j < J; ++j) g[j] += c[i * J + j] * (coupling_grad[j] - weighted);
                // b_ij(r) = b_ij(r-1) + u_hat_ij . v_j(r-1)
                for (std::size_t j = 0; j < J; ++j) {
                    Ops::add_scaled(g[j], u + j * D, next_vr_grad.data() + j * D, D);
                    Ops::add_scaled(g[j], v_before + j * D, gu + j * D, D);
                }
            }
            if (!earlier) break;
            std::swap(vr_grad, next_vr_grad);
        }
    }
}

}  // namespace

template <class T>
void routing_forward(const Tensor<T, 4>& u_hat, int iterations, RoutingState<T>& state, Tensor<T, 3>& v) {
    if (iterations < 1) throw Error("routing: at least one iteration is needed");
    if (u_hat.shape(3) == digit_dims)
        routing_forward_fused<T, digit_dims>(u_hat, iterations, state, v);
    else
        routing_forward_fused<T, 0>(u_hat, iterations, state, v);
}

template <class T>
void routing_backward(const Tensor<T, 4>& u_hat, const RoutingState<T>& state, const Tensor<T, 3>& v_grad,
                      bool stop_gradient, Tensor<T, 4>& u_hat_grad) {
    if (u_hat.shape(3) == digit_dims)
        routing_backward_fused<T, digit_dims>(u_hat, state, v_grad, stop_gradient, u_hat_grad);
    else
        routing_backward_fused<T, 0>(u_hat, state, v_grad, stop_gradient, u_hat_grad);
}

#define CAPSNET_INSTANTIATE(T)                                                                                   \
    template void squash_forward<T>(const T*, T*, std::size_t, int);                                             \
    template void squash_backward<T>(const T*, const T*, T*, std::size_t, int);                                  \
    template void routing_forward<T>(const Tensor<T, 4>&, int, RoutingState<T>&, Tensor<T, 3>&);                 \
    template void routing_backward<T>(const Tensor<T, 4>&, const RoutingState<T>&, const Tensor<T, 3>&, bool,     \
                                      Tensor<T, 4>&);                                                            \
    template void routing_forward_reference<T>(const Tensor<T, 4>&, int, RoutingState<T>&, Tensor<T, 3>&);       \
    template void routing_backward_reference<T>(const Tensor<T, 4>&, const RoutingState<T>&, const Tensor<T, 3>&, \
                                                bool, Tensor<T, 4>&);
CAPSNET_INSTANTIATE(float)
CAPSNET_INSTANTIATE(double)
#undef CAPSNET_INSTANTIATE

}  // namespace capsnet
