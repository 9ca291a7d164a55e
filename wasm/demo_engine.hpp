// What the browser demo computes, without any UI: classify one 28x28 input, the mask grid, the dimension
// sweeps and the reconstruction of one edited capsule. Plain C++ over the shared core, so the native
// benchmark, the wasm-against-native test and the browser app all run exactly this code.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "capsnet/affine.hpp"
#include "capsnet/common.hpp"
#include "capsnet/model.hpp"
#include "capsnet/routing_view.hpp"
#include "capsnet/weights.hpp"

namespace capsnet {

// The demo's GEMMs run on up to this many threads, one per core (wasm/demo_main.cpp): the main thread
// and workers of the pool that -sPTHREAD_POOL_SIZE=3 starts with the page (a thread beyond that pool
// could not start while the main thread waits for it). The every-layer fine-tuning step is three large
// convolution products that split evenly: 1.4-1.6x faster on 2 cores in Chromium (bench/README.md).
constexpr int demo_max_gemm_threads = 4;
// Runs every GEMM through gemm_parallel on `requested` threads clamped to 1..demo_max_gemm_threads and
// returns the count in use: the page at start (one per core), its benchmark hook and bench/demo_timing.
// Like gemm_set_backend, only while no GEMM is running.
int demo_use_gemm_threads(int requested);

constexpr int demo_image_side = 28;
constexpr int demo_image_pixels = demo_image_side * demo_image_side;
using DemoImage = std::array<std::uint8_t, demo_image_pixels>;  // what the network sees: bytes / 255, like MNIST
// The drawing is rasterised at 5x MNIST's size before the MNIST-style crop, scale and centring: enough
// resolution for the 20x20 box's antialiasing, cheap enough to redo on every pen move.
constexpr int demo_raster_side = 5 * demo_image_side;

// [28, 28] in [0, 1], as the network reads the bytes.
Tensor<float, 2> demo_image_floats(const DemoImage& image);

// The pose lab. `base` is the drawing's 28x28 image before any transform (what a share link stores).
// - refit false: `base` is warped as a 28x28 image, as affNIST does (PoseSource::mnist): every parameter
//   reaches the network, and the identity gives `base` exactly.
// - refit true: `base` is upscaled to the drawing's raster (demo_raster_side), transformed there and
//   fitted to 28x28 again by the drawing's preprocessing (PoseSource::canvas): a transform "applied to
//   the drawing", of which the refit undoes most of a scale or shift. Always refitted, the identity too
//   (so the sweep's identity column matches the live view); a refitted digit comes back ~5% smaller,
//   the upscale's blur widening its box.
// Built from `base` alone, never from the strokes, so a share link (base + pose) restores the input
// bit for bit.
struct DemoPoseImage {
    Tensor<float, 2> image;  // what the transform applies to
    PoseSource source;
};
DemoPoseImage demo_pose_image(const DemoImage& base, bool refit);
DemoImage demo_pose_input(const DemoImage& base, const AffineTransform& pose, bool refit);

struct GalleryDigit {
    int label = 0;
    DemoImage pixels{};
};
// The gallery file written by web/tools/make_gallery.mjs: "CNG1", uint32 LE count, count x (label, 784
// bytes). Error saying what is wrong for anything else.
std::vector<GalleryDigit> gallery_parse(const std::vector<std::uint8_t>& bytes);
// The inverse (the Teach panel keeps its personal examples in the browser's storage in this format).
std::vector<std::uint8_t> gallery_serialize(const std::vector<GalleryDigit>& digits);

struct DemoAnalysis {
    std::vector<float> lengths;  // [10] capsule lengths (class scores)
    Tensor<float, 2> capsules;   // [10, 16] digit capsules
    int prediction = -1;         // longest capsule; -1 for a blank input (nothing to classify)
};

class DemoEngine {
public:
    // Error naming `source` when the bytes are not a valid model file.
    DemoEngine(const std::vector<std::uint8_t>& model_file, const std::string& source);
    explicit DemoEngine(Model model);

    const Model& model() const { return model_; }
    int classes() const;
    int capsule_dims() const;

    DemoAnalysis classify(const DemoImage& input);
    // What dynamic routing did for the input of the last classify (routing_view.hpp): couplings and
    // logits per iteration, the attribution maps. Valid until the next classify or pose_sweep.
    RoutingView routing() const;
    // pose_sweep (affine.hpp) of the pose lab's image: `axis` set to each of `values` on top of `pose`.
    // Reuses classify's scratch: read routing() first.
    PoseSweep pose_sweep(const DemoImage& base, bool refit, const AffineTransform& pose, PoseAxis axis,
                         const std::vector<float>& values, int digit);
    // [10, 784]: the input reconstructed through each digit capsule alone (the seed's vis_all row).
    Tensor<float, 2> mask_grid(const Tensor<float, 2>& capsules) const;
    // [offsets, 16, 784]: capsule `digit` with offsets[r] added to one dimension at a time.
    Tensor<float, 3> sweep_grid(const Tensor<float, 2>& capsules, int digit, const std::vector<float>& offsets) const;
    // [784]: the decoder's picture of one capsule vector (the sliders' live view), all others masked.
    std::vector<float> reconstruct(const std::vector<float>& capsule, int digit) const;

private:
    Model model_;
    ForwardState<float> scratch_;  // reused between calls: the forward pass allocates ~10 MB otherwise
};

}  // namespace capsnet
