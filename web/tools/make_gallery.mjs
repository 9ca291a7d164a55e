// Writes the demo's digit files, all in one small format the page fetches instead of the MNIST sets:
// - the gallery: the first N test images of each class (the default);
// - the fine-tuning mix: training images mixed into every fine-tuning batch (--split train --per-class 100);
// - the forgetting check: the first N test images in order (--first 500).
//   node web/tools/make_gallery.mjs <mnist dir> <out file> [--split test|train] [--per-class 10 | --first N]
// Format (little-endian): ASCII "CNG1", uint32 count, then count records of
// (uint8 label, 784 bytes of pixels, row-major 28x28); per class: class 0's N digits first, then class 1's, ...
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const idx_images_magic = 0x00000803;  // unsigned byte, 3 dimensions
const idx_labels_magic = 0x00000801;  // unsigned byte, 1 dimension
const hex = (value) => value.toString(16).padStart(8, '0');

// Reads the MNIST test set from dir (see read_mnist).
export async function read_mnist_test(dir) {
  return read_mnist(dir, 't10k');
}

// Reads an MNIST split ('t10k' or 'train') from dir: {count, rows, cols, images: Uint8Array(count*rows*cols),
// labels}. Throws an Error naming the file for anything missing, truncated or not MNIST-shaped.
export async function read_mnist(dir, prefix) {
  const images_file = path.join(dir, `${prefix}-images-idx3-ubyte`);
  const labels_file = path.join(dir, `${prefix}-labels-idx1-ubyte`);
  const read = async (file) => {
    try {
      return await fs.readFile(file);
    } catch (error) {
      throw new Error(`cannot read ${file}: ${error.code || error.message} (run scripts/fetch_mnist.sh)`);
    }
  };
  const [images, labels] = await Promise.all([read(images_file), read(labels_file)]);

  if (images.length < 16) throw new Error(`${images_file}: too short for an IDX header (${images.length} bytes)`);
  const images_magic = images.readUInt32BE(0);
  if (images_magic !== idx_images_magic)
    throw new Error(`${images_file}: IDX magic 0x${hex(images_magic)}, expected 0x00000803 (is it gzipped?)`);
  const count = images.readUInt32BE(4);
  const rows = images.readUInt32BE(8);
  const cols = images.readUInt32BE(12);
  if (rows !== 28 || cols !== 28) throw new Error(`${images_file}: images are ${rows}x${cols}, expected 28x28`);
  if (images.length !== 16 + count * rows * cols)
    throw new Error(`${images_file}: ${images.length} bytes, expected ${16 + count * rows * cols} for ${count} images`);

  if (labels.length < 8) throw new Error(`${labels_file}: too short for an IDX header (${labels.length} bytes)`);
  const labels_magic = labels.readUInt32BE(0);
  if (labels_magic !== idx_labels_magic)
    throw new Error(`${labels_file}: IDX magic 0x${hex(labels_magic)}, expected 0x00000801 (is it gzipped?)`);
  const label_count = labels.readUInt32BE(4);
  if (labels.length !== 8 + label_count)
    throw new Error(`${labels_file}: ${labels.length} bytes, expected ${8 + label_count}`);
  if (label_count !== count)
    throw new Error(`${labels_file} has ${label_count} labels but ${images_file} has ${count} images`);
  const label_bytes = labels.subarray(8);
  const bad = label_bytes.findIndex((label) => label > 9);
  if (bad >= 0) throw new Error(`${labels_file}: label ${label_bytes[bad]} at index ${bad} is not a digit`);

  return { count, rows, cols, images: images.subarray(16), labels: label_bytes };
}

// Indices of the first per_class images of each class, class 0's first, then class 1's, ...
export function first_indices_per_class(labels, per_class) {
  const by_class = Array.from({ length: 10 }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const bucket = by_class[labels[i]];
    if (bucket.length < per_class) bucket.push(i);
  }
  by_class.forEach((bucket, digit) => {
    if (bucket.length < per_class)
      throw new Error(`only ${bucket.length} images of class ${digit}, wanted ${per_class}`);
  });
  return by_class.flat();
}

export function encode_gallery(mnist, indices) {
  const pixels = mnist.rows * mnist.cols;
  const out = Buffer.alloc(8 + indices.length * (1 + pixels));
  out.write('CNG1', 0, 'ascii');
  out.writeUInt32LE(indices.length, 4);
  indices.forEach((index, k) => {
    const at = 8 + k * (1 + pixels);
    out[at] = mnist.labels[index];
    out.set(mnist.images.subarray(index * pixels, (index + 1) * pixels), at + 1);
  });
  return out;
}

async function main(argv) {
  const usage = 'usage: node web/tools/make_gallery.mjs <mnist dir> <out file> [--split test|train] [--per-class 10 | --first N]';
  const positional = [];
  let per_class = 10, first = 0, split = 'test';
  const count_value = (option, value) => {
    if (!/^\d+$/.test(value || '') || Number(value) < 1) throw new Error(`${option} needs a positive integer, got '${value}'`);
    return Number(value);
  };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--per-class') {
      per_class = count_value('--per-class', argv[++i]);
    } else if (argv[i] === '--first') {
      first = count_value('--first', argv[++i]);
    } else if (argv[i] === '--split') {
      split = argv[++i];
      if (split !== 'test' && split !== 'train') throw new Error(`--split is test or train, got '${split}'`);
    } else if (argv[i] === '-h' || argv[i] === '--help') {
      console.log(usage);
      return;
    } else if (argv[i].startsWith('--')) {
      throw new Error(`unknown option '${argv[i]}'\n${usage}`);
    } else {
      positional.push(argv[i]);
    }
  }
  if (positional.length !== 2) throw new Error(usage);
  const [mnist_dir, out_file] = positional;
  const mnist = await read_mnist(mnist_dir, split === 'test' ? 't10k' : 'train');
  if (first > mnist.count) throw new Error(`--first ${first}: the ${split} set has ${mnist.count} images`);
  const indices = first ? Array.from({ length: first }, (_, i) => i) : first_indices_per_class(mnist.labels, per_class);
  const gallery = encode_gallery(mnist, indices);
  await fs.mkdir(path.dirname(path.resolve(out_file)), { recursive: true });
  // Write then rename, so a build never picks up a half-written gallery.
  const temporary = `${out_file}.tmp`;
  await fs.writeFile(temporary, gallery);
  await fs.rename(temporary, out_file);
  console.log(`make_gallery: wrote ${out_file} (${indices.length} ${split} digits, ${gallery.length} bytes)`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(`make_gallery: error: ${error.message}`);
    process.exit(1);
  });
}
