// Model files: Config + Parameters <-> safetensors, with the names, shapes and metadata of docs/model-contract.md, so
// `safetensors.torch.load_file` reads the same file in PyTorch. Loading validates everything: a wrong
// shape, a missing or unexpected tensor, or bad metadata is an Error naming the file and the tensor.
#pragma once

#include <string>

#include "capsnet/config.hpp"
#include "capsnet/parameters.hpp"
#include "capsnet/safetensors.hpp"

namespace capsnet {

struct Model {
    Config config;
    Parameters<float> params;
};

// F32 tensors plus the config as `__metadata__`.
SafeTensors model_to_safetensors(const Model& model);
// Smaller files for the web. F16: every tensor as binary16. I8: each `*.weight` tensor as int8 with a
// per-output-channel F32 `<name>.scale` (symmetric: scale = max |w| / 127 over the channel, so the
// rounding error is at most scale / 2 per weight); biases stay F32 (they are 0.1% of the bytes).
SafeTensors model_to_safetensors(const Model& model, DType dtype);
// Accepts F32, F64 and F16 tensors, and I8 tensors with a per-output-channel F32 `<name>.scale`.
Model model_from_safetensors(const SafeTensors& file, const std::string& source);

void model_save(const std::string& path, const Model& model);  // atomic (temp file + rename)
Model model_load(const std::string& path);

}  // namespace capsnet
