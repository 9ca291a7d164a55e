#!/usr/bin/env python3
"""The CapsNet of docs/model-contract.md in plain PyTorch: a yardstick for our C++ core.

train-speed times full training steps (forward, loss, backward, Adam) of a preset and prints one JSON line,
on the CPU or (--device cuda) a GPU; gpu-floor measures the GPU's float32 matrix-product throughput and the
time per training image that implies; check-model loads one of our .safetensors files with
load_state_dict(strict=True) and measures MNIST test accuracy, proving the C++ core's files are PyTorch models. The math mirrors shared/capsnet; comments name
the C++ function a line follows where the two could drift. Needs torch and numpy only (no `safetensors`).
"""
import argparse
import json
import os
import struct
import sys
import time
from pathlib import Path

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # e.g. a pyenv python3 first on PATH, while apt's torch lives in /usr/bin/python3
    sys.exit(f"pytorch_capsnet.py: error: {sys.executable} lacks torch or numpy (apt's live in /usr/bin/python3)")

TYPES, DIMS, GRID, CLASSES, OUT_DIMS = 32, 8, 36, 10, 16  # primary types/dims, 6x6 grid, digit caps

# config_for_preset() in shared/capsnet/config.cpp; only the fields this script uses.
PRESETS = {
    "seed": dict(squash_primary=False, shared_digit_weights=True, conv1_leaky_slope=0.05, init="uniform_005"),
    "paper": dict(squash_primary=True, shared_digit_weights=False, conv1_leaky_slope=0.0, init="pytorch_default"),
}
COMMON = dict(routing_iterations=3, routing_stop_gradient=False, reconstruct=True,
              reconstruction_weight=0.0005, margin_positive=0.9, margin_negative=0.1, margin_lambda=0.5,
              learning_rate=1e-3, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8)


def preset_config(name):
    return dict(COMMON, preset=name, **PRESETS[name])


def fail(message):
    sys.exit(f"pytorch_capsnet.py: error: {message}")


class DigitCaps(nn.Module):
    """u_hat[b, i, j] = W[w(i), j] u[b, i] (+ bias[w(i), j]); w(i) = i for paper, i // 36 for seed."""
    def __init__(self, shared):
        super().__init__()
        self.shared = shared
        self.weight = nn.Parameter(torch.empty(TYPES if shared else TYPES * GRID, CLASSES, OUT_DIMS, DIMS))
        # The seed's per-type 1x1 convolutions carry a bias; the paper's W has none (so no state_dict key).
        self.bias = nn.Parameter(torch.zeros(TYPES, CLASSES, OUT_DIMS)) if shared else None

    def forward(self, u):  # u [B, 1152, 8] -> u_hat [B, 1152, 10, 16]
        if not self.shared:
            return torch.einsum("bik,ijdk->bijd", u, self.weight)
        # One batched matmul per type over its 36 grid positions: predictions_forward's W[i // 36].
        u_hat = torch.einsum("btpk,tjdk->btpjd", u.view(-1, TYPES, GRID, DIMS), self.weight) + self.bias[:, None]
        return u_hat.flatten(1, 2)


def squash(s):
    # = s |s|/(1+|s|^2); vector_norm's backward is 0 at s = 0, so squash(0) = 0 with zero gradient, no epsilon.
    n = torch.linalg.vector_norm(s, dim=-1, keepdim=True)
    return s * (n / (1 + n * n))


def routing(u_hat, iterations, stop_gradient=False):
    """Procedure 1 of Sabour et al. batched over samples (routing_forward); softmax over the classes."""
    # Class-major [B, 10, 1152, 16] once: both sums below become batched matmuls on contiguous memory.
    u = u_hat.transpose(1, 2).contiguous()
    u_const = u.detach() if stop_gradient else u
    b = u.new_zeros(u.shape[:3])  # [B, 10, 1152]
    for r in range(iterations):
        c = F.softmax(b, dim=1)
        last = r + 1 == iterations
        # routing_backward with stop_gradient: couplings are constants, only the last sum sees u_hat.
        v = squash((c.unsqueeze(2) @ (u if last else u_const)).squeeze(2))  # s_j = sum_i c_ij u_hat_ij
        if not last:  # no agreement update after the last iteration (routing_forward breaks there)
            b = b + (u_const @ v.unsqueeze(3)).squeeze(3)  # b_ij += u_hat_ij . v_j
    return v  # [B, 10, 16]


class CapsNet(nn.Module):
    # Attribute names give exactly the state_dict keys of docs/model-contract.md: conv1.*, primary.*, digit.*,
    # decoder.{0,1,2}.* (ReLU/Sigmoid are applied functionally so they do not shift the indices).
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv2d(1, 256, 9)
        self.primary = nn.Conv2d(256, TYPES * DIMS, 9, stride=2)
        self.digit = DigitCaps(config["shared_digit_weights"])
        self.decoder = nn.Sequential(nn.Linear(CLASSES * OUT_DIMS, 512), nn.Linear(512, 1024), nn.Linear(1024, 784))

    def init_parameters(self):
        """parameters_init() in parameters.cpp (same distributions, not the same random numbers)."""
        with torch.no_grad():
            if self.config["init"] == "uniform_005":  # Chainer's Uniform(0.05), zero biases
                for name, p in self.named_parameters():
                    p.uniform_(-0.05, 0.05) if name.endswith("weight") else p.zero_()
            else:  # PyTorch's own Conv2d/Linear defaults are U(+-1/sqrt(fan_in)) already
                nn.init.trunc_normal_(self.digit.weight, std=0.01, a=-0.02, b=0.02)
        return self

    def capsules(self, images):  # images [B, 1, 28, 28] -> digit capsules v [B, 10, 16]
        slope = self.config["conv1_leaky_slope"]
        h = self.conv1(images)
        h = F.leaky_relu(h, slope) if slope > 0 else F.relu(h)
        p = self.primary(h)  # [B, 256, 6, 6]
        B = p.shape[0]
        # Capsule i = t*36 + y*6 + x takes channels 8t..8t+7 at (y, x): [B, 32, 8, 36] -> [B, 32, 36, 8].
        u = p.view(B, TYPES, DIMS, GRID).transpose(2, 3).reshape(B, TYPES * GRID, DIMS)
        if self.config["squash_primary"]:
            u = squash(u)
        return routing(self.digit(u), self.config["routing_iterations"], self.config["routing_stop_gradient"])

    def decode(self, v, labels):
        # Keep only the labelled capsule, flattened class-major (j*16 + d), as model_forward's mask.
        masked = (v * F.one_hot(labels, CLASSES).to(v.dtype)[:, :, None]).flatten(1)
        d0, d1, d2 = self.decoder
        return torch.sigmoid(d2(F.relu(d1(F.relu(d0(masked))))))

    def loss(self, images, labels):
        c = self.config
        v = self.capsules(images)
        lengths = torch.linalg.vector_norm(v, dim=-1)  # its backward is 0 at |v| = 0, as margin_loss_backward
        target = F.one_hot(labels, CLASSES).to(v.dtype)
        margin = (target * F.relu(c["margin_positive"] - lengths) ** 2
                  + c["margin_lambda"] * (1 - target) * F.relu(lengths - c["margin_negative"]) ** 2)
        loss = margin.sum(1).mean()
        if c["reconstruct"]:
            error = self.decode(v, labels) - images.flatten(1)
            loss = loss + c["reconstruction_weight"] * (error * error).sum() / images.shape[0]
        return loss


# --- Data ------------------------------------------------------------------------------------------
def read_idx(path, magic):
    data = Path(path).read_bytes()
    if data[:4] != struct.pack(">i", magic):
        fail(f"{path}: not an uncompressed IDX file with magic {magic}")
    ndim = magic & 0xFF
    shape = struct.unpack(">" + "i" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def mnist(directory, prefix, limit=None):
    """Pixels / 255 as float32 [N, 1, 28, 28] (no shift, as evaluation in the core) and int64 labels."""
    images = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte"), 2051)[:limit]
    labels = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte"), 2049)[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


# --- safetensors: 8-byte little-endian header length, JSON header, raw little-endian data ------------
NUMPY_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I8": "i1"}


def read_safetensors(path):
    data = Path(path).read_bytes()
    header_len = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else len(data)
    if header_len > len(data) - 8:
        fail(f"{path}: not a safetensors file, or truncated (header length beyond the end of the file)")
    buffer = memoryview(data)[8 + header_len:]
    try:
        header = json.loads(data[8:8 + header_len])
        metadata = header.pop("__metadata__", {})
        tensors = {}
        for name, entry in header.items():
            if entry["dtype"] not in NUMPY_DTYPES:
                fail(f"{path}: tensor '{name}' has unsupported dtype {entry['dtype']} (F32, F16, F64, I8)")
            dtype, (begin, end) = np.dtype(NUMPY_DTYPES[entry["dtype"]]), entry["data_offsets"]
            count = int(np.prod(entry["shape"], dtype=np.int64))
            if not 0 <= begin <= end <= len(buffer) or end - begin != count * dtype.itemsize:
                fail(f"{path}: tensor '{name}' data_offsets {entry['data_offsets']} do not fit shape "
                     f"{entry['shape']} of {entry['dtype']} in a {len(buffer)}-byte buffer")
            tensors[name] = (entry["dtype"], np.frombuffer(buffer[begin:end], dtype).reshape(entry["shape"]))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        fail(f"{path}: malformed safetensors header ({type(e).__name__}: {e})")
    return metadata, tensors


def config_from_metadata(metadata, path):
    """config_from_metadata() in config.cpp: the recorded preset's defaults, overridden by the metadata."""
    preset = metadata.get("preset")
    if preset not in PRESETS:
        fail(f"{path}: metadata 'preset' is {preset!r}, expected 'seed' or 'paper'")
    config = preset_config(preset)
    for key, default in config.items():
        if key in metadata and key != "preset":
            text = metadata[key]
            try:
                if isinstance(default, bool) and text not in ("true", "false"):
                    raise ValueError
                config[key] = text == "true" if isinstance(default, bool) else type(default)(text)
            except ValueError:
                fail(f"{path}: metadata '{key}' = '{text}' is not a valid {type(default).__name__}")
    return config


def state_dict_from_file(tensors, path):
    """Float tensors as stored; I8 dequantized as int8 * scale[out channel] (dequantize() in weights.cpp)."""
    state = {}
    for name, (dtype, array) in tensors.items():
        if dtype == "I8":
            if name + ".scale" not in tensors:
                fail(f"{path}: tensor '{name}' is I8 but '{name}.scale' is missing")
            scale = tensors[name + ".scale"][1].astype(np.float32).reshape(-1)
            if scale.size != array.shape[0]:
                fail(f"{path}: '{name}.scale' has {scale.size} values for {array.shape[0]} output channels")
            array = array.astype(np.float32) * scale.reshape((-1,) + (1,) * (array.ndim - 1))
        elif name.endswith(".scale") and tensors.get(name[:-6], ("",))[0] == "I8":
            continue  # consumed with its I8 tensor; any other `.scale` stays and is reported as unexpected
        state[name] = torch.from_numpy(np.array(array, dtype=np.float32))  # a writable copy
    return state


# --- GPU helpers -----------------------------------------------------------------------------------
def strict_float32():
    """IEEE float32 matrix products and convolutions, as our CUDA backend computes them (cuBLAS SGEMM).
    Otherwise cuDNN runs the convolutions in TF32 (10-bit mantissas): faster, but not the same arithmetic."""
    if hasattr(torch.backends, "fp32_precision"):  # torch >= 2.9; the allow_tf32 flags are deprecated there
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def training_flops_per_image(config):
    """Multiply-adds x 2 of one image's forward pass, from the layer shapes, times 3 for forward + backward
    (the backward pass computes the input and the weight gradient of every product). Element-wise work
    (activations, softmax, squash, Adam) is left out: it is memory-bound, not a FLOP floor."""
    conv1 = 256 * 20 * 20 * (1 * 9 * 9)          # conv1: 256x20x20 outputs, 81 taps each
    primary = 256 * 6 * 6 * (256 * 9 * 9)        # primary conv: 256x6x6 outputs, 256x9x9 taps each
    u_hat = TYPES * GRID * CLASSES * OUT_DIMS * DIMS  # W[i][j] (16x8) u[i] for 1152 x 10 pairs
    r = config["routing_iterations"]
    votes = TYPES * GRID * CLASSES * OUT_DIMS    # s_j = sum_i c_ij u_hat_ij, and each agreement u_hat_ij . v_j
    routing = r * votes + (r - 1) * votes
    decoder = (CLASSES * OUT_DIMS * 512 + 512 * 1024 + 1024 * 784) if config["reconstruct"] else 0
    return 3 * 2 * (conv1 + primary + u_hat + routing + decoder)


def gpu_floor(args):
    """The GPU's float32 matrix-product throughput (TF32 off), and the time per training image it implies."""
    if not torch.cuda.is_available():
        fail("gpu-floor: this torch sees no CUDA device")
    strict_float32()
    n = args.size
    a, b = torch.rand(n, n, device="cuda"), torch.rand(n, n, device="cuda")
    for _ in range(3):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.repeats):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.repeats
    tflops = 2.0 * n ** 3 / seconds / 1e12
    result = {"device": torch.cuda.get_device_name(), "matmul": f"{n}x{n}x{n} float32", "tflops": round(tflops, 2)}
    for preset in sorted(PRESETS):
        flops = training_flops_per_image(preset_config(preset))
        us = flops / (tflops * 1e12) * 1e6
        result[preset] = {"flops_per_image": flops, "us_per_image": round(us, 3),
                          "images_per_second_max": round(1e6 / us, 1)}
    print(json.dumps(result))


# --- Commands --------------------------------------------------------------------------------------
def train_speed(args):
    torch.manual_seed(0)
    config = preset_config(args.preset)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            fail("--device cuda: this torch sees no CUDA device")
        strict_float32()
        torch.backends.cudnn.benchmark = True  # the fastest algorithm for these fixed shapes, picked in warm-up
    model = CapsNet(config).init_parameters().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"],
                                 betas=(config["adam_beta1"], config["adam_beta2"]), eps=config["adam_epsilon"])
    total, B = args.warmup + args.steps, args.batch_size
    if args.mnist:  # the first training images, unshifted: the step costs the same as with augmentation
        x, y = mnist(args.mnist, "train", total * B)
        batches = [(x[k], y[k]) for k in (torch.arange(total * B) % len(y)).view(total, B)]  # wraps at 60000
    else:  # random uniform [0, 1) images and random labels: the cost of a step does not depend on the data
        batches = [(torch.rand(B, 1, 28, 28), torch.randint(0, CLASSES, (B,))) for _ in range(total)]
    batches = [(x.to(device), y.to(device)) for x, y in batches]  # before timing (a no-op on the CPU)

    def step(images, labels):  # one full training step, as training.cpp's
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(images, labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    def synchronize():  # CUDA kernels run asynchronously: wait for them before reading the clock
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for images, labels in batches[:args.warmup]:
        step(images, labels)
    synchronize()
    start = time.perf_counter()
    for images, labels in batches[args.warmup:]:
        loss = step(images, labels)
    synchronize()
    seconds = time.perf_counter() - start
    if not np.isfinite(loss):
        fail(f"loss is {loss}")
    result = {"framework": "pytorch", "torch": torch.__version__, "preset": args.preset,
              "batch_size": B, "threads": args.threads, "steps": args.steps, "seconds": round(seconds, 4),
              "images_per_second": round(args.steps * B / seconds, 2)}
    if device.type != "cpu":
        result["device"] = f"{args.device} ({torch.cuda.get_device_name(device)})"
    print(json.dumps(result))


def check_model(args):
    metadata, tensors = read_safetensors(args.file)
    config = config_from_metadata(metadata, args.file)
    model = CapsNet(config)
    try:
        model.load_state_dict(state_dict_from_file(tensors, args.file), strict=True)
    except RuntimeError as e:  # lists missing/unexpected keys and every shape mismatch
        fail(f"{args.file} does not match the {config['preset']} model: {e}")
    model.eval()
    images, labels = mnist(args.mnist, "t10k", args.limit)
    with torch.no_grad():
        lengths = torch.cat([torch.linalg.vector_norm(model.capsules(x), dim=-1)
                             for x in images.split(args.batch_size)])
    accuracy = (lengths.argmax(1) == labels).double().mean().item()
    if args.dump_lengths:
        np.save(args.dump_lengths, lengths.numpy().astype(np.float32))
    print(json.dumps({"framework": "pytorch", "file": args.file, "preset": config["preset"],
                      "images": len(labels), "accuracy": round(accuracy, 6)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    speed = sub.add_parser("train-speed", help="time full training steps")
    speed.add_argument("--preset", choices=sorted(PRESETS), default="seed")
    speed.add_argument("--steps", type=int, default=5)
    speed.add_argument("--warmup", type=int, default=1)
    speed.add_argument("--mnist", help="MNIST directory; random inputs when omitted")
    speed.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                       help="where the model and the batches live (cuda: the current GPU, float32 without TF32)")
    check = sub.add_parser("check-model", help="load a .safetensors model and measure test accuracy")
    check.add_argument("file")
    check.add_argument("--mnist", default="data/mnist", help="directory with the t10k IDX files")
    check.add_argument("--limit", type=int, default=None, help="first N test images (default: all)")
    check.add_argument("--dump-lengths", metavar="OUT.npy", help="save the [N, 10] capsule lengths")
    floor = sub.add_parser("gpu-floor", help="float32 matmul TFLOP/s of the GPU and the FLOP floor per image")
    floor.add_argument("--size", type=int, default=8192, help="n of the timed n x n x n product")
    floor.add_argument("--repeats", type=int, default=10)
    floor.set_defaults(threads=torch.get_num_threads())
    for command, batch in ((speed, 32), (check, 100)):
        command.add_argument("--batch-size", type=int, default=batch)
        command.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    for name, least in (("batch_size", 1), ("threads", 1), ("steps", 1), ("limit", 1), ("warmup", 0)):
        if getattr(args, name, None) is not None and getattr(args, name) < least:
            fail(f"--{name.replace('_', '-')} must be at least {least}")
    torch.set_num_threads(args.threads)
    try:
        {"train-speed": train_speed, "check-model": check_model, "gpu-floor": gpu_floor}[args.command](args)
    except OSError as e:  # a missing model or MNIST file (scripts/fetch_mnist.sh makes data/mnist)
        fail(e)


if __name__ == "__main__":
    main()
