// Writes the fuzzers' seed corpora (the build runs it; nothing binary is committed):
//   fuzz_seeds <out dir> [<model file>]
// <out>/safetensors: a small file of every dtype, an empty one, a random model's header with a little data;
// <out>/model: random models of both presets as F32, F16 and I8, and the shipped model when given, each
//   cut to its header and the first 2 KB of data (fuzz_model.cpp repeats the data to the declared size);
// <out>/idx: image and label files (first byte 1 and 0, as fuzz_idx.cpp reads them);
// <out>/share_link and <out>/share_link_sealed: links to a few views, as text and as sealed payloads;
// <out>/drawing: strokes of a few shapes (a dot, a line, a loop, non-finite points).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "capsnet/weights.hpp"
#include "share_link.hpp"

using namespace capsnet;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& dir, const std::string& name, const std::vector<std::uint8_t>& bytes) {
    fs::create_directories(dir);
    std::ofstream out(dir / name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw Error((dir / name).string() + ": cannot write");
}

std::vector<std::uint8_t> header_and_some_data(const std::vector<std::uint8_t>& file, std::size_t data_bytes) {
    std::uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | file[static_cast<std::size_t>(i)];
    const std::size_t keep = std::min(file.size(), static_cast<std::size_t>(8 + header_length + data_bytes));
    return std::vector<std::uint8_t>(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(keep));
}

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

void put_f32(std::vector<std::uint8_t>& out, float v) {
    std::uint8_t b[4];
    std::memcpy(b, &v, 4);
    out.insert(out.end(), b, b + 4);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "usage: fuzz_seeds <out dir> [<model file>]\n");
        return 2;
    }
    try {
        const fs::path out = argv[1];
        // safetensors
        SafeTensors small;
        small.metadata["preset"] = "seed";
        const float values[3] = {1.5f, -2.0f, 0.25f};
        small.tensors["a"] = stored_tensor_f32({3}, values);
        small.tensors["b.half"] = StoredTensor{DType::F16, {2}, {0x00, 0x3c, 0x00, 0xc0}};
        small.tensors["c.int8"] = StoredTensor{DType::I8, {2, 2}, {1, 0x7f, 0x80, 0xff}};
        small.tensors["d.empty"] = stored_tensor_f32({0, 3}, nullptr);
        small.tensors["e.double"] = StoredTensor{DType::F64, {1}, std::vector<std::uint8_t>(8, 0)};
        write(out / "safetensors", "small", safetensors_serialize(small));
        write(out / "safetensors", "empty", safetensors_serialize(SafeTensors{}));

        // models
        Rng rng(16);
        for (Preset preset : {Preset::seed, Preset::paper}) {
            Model model;
            model.config = config_for_preset(preset);
            model.params = parameters_init<float>(model.config, rng);
            for (DType dtype : {DType::F32, DType::F16, DType::I8}) {
                const std::vector<std::uint8_t> file = safetensors_serialize(model_to_safetensors(model, dtype));
                const std::string name = std::string(preset_name(preset)) + "-" + dtype_name(dtype);
                write(out / "model", name, header_and_some_data(file, 2048));
                if (preset == Preset::seed && dtype == DType::I8)
                    write(out / "safetensors", "model-" + name, header_and_some_data(file, 256));
            }
        }
        if (argc == 3) {
            std::ifstream in(argv[2], std::ios::binary);
            const std::vector<std::uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            if (!in.eof() && !in) throw Error(std::string(argv[2]) + ": cannot read");
            write(out / "model", "shipped", header_and_some_data(file, 2048));
        }

        // IDX: images (selector byte 1) and labels (0)
        std::vector<std::uint8_t> images = {1};
        put_u32(images, 0x803), put_u32(images, 2), put_u32(images, 3), put_u32(images, 3);
        for (int i = 0; i < 18; ++i) images.push_back(static_cast<std::uint8_t>(i * 14));
        write(out / "idx", "images", images);
        std::vector<std::uint8_t> labels = {0};
        put_u32(labels, 0x801), put_u32(labels, 4);
        for (std::uint8_t l : {3, 1, 4, 1}) labels.push_back(l);
        write(out / "idx", "labels", labels);

        // share links: a plain view, an edited capsule with a pose, a raw-stored noisy image
        std::vector<ShareView> views(3);
        views[0].model_id = "capsnet-seed-i8";
        for (int i = 0; i < 784; ++i) views[0].input[static_cast<std::size_t>(i)] = (i / 28 > 8 && i / 28 < 20 && i % 28 == 14) ? 255 : 0;
        views[1] = views[0];
        views[1].selected_capsule = 7, views[1].capsule_edited = true, views[1].capsule[3] = 0.125f;
        views[1].view_tab = 2, views[1].pose.rotation_degrees = 30, views[1].pose.scale = 0.8f, views[1].fine_tuned = true;
        views[2].model_id = "m";
        for (int i = 0; i < 784; ++i) views[2].input[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i * 97);
        views[2].view_tab = 1, views[2].routing_iteration = 2, views[2].routing_logits = true;
        for (std::size_t v = 0; v < views.size(); ++v) {
            const std::string link = share_link_encode(views[v]);
            write(out / "share_link", "view" + std::to_string(v), std::vector<std::uint8_t>(link.begin(), link.end()));
        }
        // The sealed fuzzer reads a version-selecting byte (1: version 2), then the payload.
        for (std::size_t v = 0; v < views.size(); ++v) {
            std::vector<std::uint8_t> payload = {1};
            const std::vector<std::uint8_t> fields = share_link_payload(views[v]);
            payload.insert(payload.end(), fields.begin(), fields.end());
            write(out / "share_link_sealed", "payload" + std::to_string(v), payload);
        }

        // drawing: side byte, then strokes (width byte, point count, points as float pairs)
        const auto stroke_file = [](std::uint8_t side, const std::vector<std::vector<std::pair<float, float>>>& strokes) {
            std::vector<std::uint8_t> bytes = {side};
            for (const auto& points : strokes) {
                bytes.push_back(10);
                bytes.push_back(static_cast<std::uint8_t>(points.size()));
                for (const auto& p : points) put_f32(bytes, p.first), put_f32(bytes, p.second);
            }
            return bytes;
        };
        write(out / "drawing", "dot", stroke_file(63, {{{0.5f, 0.5f}}}));
        write(out / "drawing", "line", stroke_file(127, {{{0.2f, 0.2f}, {0.8f, 0.7f}}}));
        write(out / "drawing", "loop", stroke_file(255, {{{0.5f, 0.2f}, {0.8f, 0.5f}, {0.5f, 0.8f}, {0.2f, 0.5f}, {0.5f, 0.2f}},
                                                          {{0.5f, 0.8f}, {0.5f, 0.95f}}}));
        write(out / "drawing", "non-finite", stroke_file(31, {{{0.1f, NAN}, {0.5f, 0.5f}, {INFINITY, 0.3f}, {0.9f, 0.9f}}}));
        std::printf("fuzz_seeds: corpora in %s\n", out.string().c_str());
    } catch (const Error& e) {
        std::fprintf(stderr, "fuzz_seeds: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
