// Squash and dynamic routing. The loops are written per sample over raw rows of the xtensor containers:
// the sizes are tiny (10 classes, 16 dims) so plain loops that the compiler vectorises beat building
// broadcast expressions, and they read like the equations in routing.hpp.
#include "capsnet/routing.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

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
void routing_forward(const Tensor<T, 4>& u_hat, int iterations, RoutingState<T>& state, Tensor<T, 3>& v) {
    if (iterations < 1) throw Error("routing: at least one iteration is needed");
    const RoutingShape sh = routing_shape(u_hat);
    const std::size_t R = iterations, B = sh.batch, I = sh.inputs, J = sh.classes, D = sh.dims;
    state.coupling.resize({R, B, I, J});
    state.s.resize({R, B, J, D});
    state.v.resize({R, B, J, D});
    v.resize({B, J, D});
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
void routing_backward(const Tensor<T, 4>& u_hat, const RoutingState<T>& state, const Tensor<T, 3>& v_grad,
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

#define CAPSNET_INSTANTIATE(T)                                                                                   \
    template void squash_forward<T>(const T*, T*, std::size_t, int);                                             \
    template void squash_backward<T>(const T*, const T*, T*, std::size_t, int);                                  \
    template void routing_forward<T>(const Tensor<T, 4>&, int, RoutingState<T>&, Tensor<T, 3>&);                 \
    template void routing_backward<T>(const Tensor<T, 4>&, const RoutingState<T>&, const Tensor<T, 3>&, bool,     \
                                      Tensor<T, 4>&);
CAPSNET_INSTANTIATE(float)
CAPSNET_INSTANTIATE(double)
#undef CAPSNET_INSTANTIATE

}  // namespace capsnet
