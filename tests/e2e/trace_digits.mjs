// Turns a 28x28 MNIST digit into pen strokes, so the browser test can draw real test digits with the
// mouse the way a person would and check the demo classifies them. Two tracers:
// - skeleton: threshold, thin to a one-pixel skeleton (Zhang-Suen), walk the skeleton into polylines
//   (split at junctions, drop tiny spurs, join pieces that continue each other), smooth them; the pen
//   width is the digit's mean stroke thickness (ink area / skeleton length). Human-like strokes.
// - rows: one horizontal stroke per run of ink in each pixel row, one row thick. Not human, but it
//   reproduces the thresholded digit almost exactly: a check of the pipeline rather than of drawing.
// Against the real demo both classify well (skeleton 30/30 and 97/100, rows 10/10), but rows needs ~4x
// the input events (26 strokes a digit: ~11 s per digit on SwiftShader against ~4 s), so skeleton is the
// default.
// Points are in canvas coordinates normalised to [0, 1]: the digit's 28x28 grid spans the whole canvas
// square, pixel (r, c) centred at ((c + 0.5) / 28, (r + 0.5) / 28).
const side = 28;
const ink_threshold = 96;  // of 255: MNIST's anti-aliased edge pixels below this are not stroke

export function trace_digit(pixels, method = 'skeleton') {
  if (method === 'skeleton') return trace_skeleton(pixels);
  if (method === 'rows') return trace_rows(pixels);
  throw new Error(`unknown tracing method '${method}' (skeleton or rows)`);
}
export const trace_methods = ['skeleton', 'rows'];

function to_canvas([r, c]) {
  return [(c + 0.5) / side, (r + 0.5) / side];
}

function threshold(pixels) {
  const ink = new Uint8Array(side * side);
  for (let i = 0; i < ink.length; i++) ink[i] = pixels[i] >= ink_threshold ? 1 : 0;
  return ink;
}

function trace_rows(pixels) {
  const ink = threshold(pixels);
  const strokes = [];
  for (let r = 0; r < side; r++) {
    for (let c = 0; c < side; c++) {
      if (!ink[r * side + c]) continue;
      const start = c;
      while (c + 1 < side && ink[r * side + c + 1]) c++;
      // Endpoints at the run's outer pixel centres; a round pen of one row adds the half pixel back.
      strokes.push([to_canvas([r, start]), to_canvas([r, c])]);
    }
  }
  return { strokes, pen_width: 1 / side };
}

// Zhang & Suen, "A fast parallel algorithm for thinning digital patterns" (CACM 1984).
function zhang_suen(ink) {
  const img = Uint8Array.from(ink);
  const at = (r, c) => (r < 0 || c < 0 || r >= side || c >= side ? 0 : img[r * side + c]);
  let changed = true;
  while (changed) {
    changed = false;
    for (const step of [0, 1]) {
      const remove = [];
      for (let r = 0; r < side; r++) {
        for (let c = 0; c < side; c++) {
          if (!img[r * side + c]) continue;
          // P2..P9 clockwise from north.
          const p = [at(r - 1, c), at(r - 1, c + 1), at(r, c + 1), at(r + 1, c + 1),
                     at(r + 1, c), at(r + 1, c - 1), at(r, c - 1), at(r - 1, c - 1)];
          const b = p.reduce((s, v) => s + v, 0);
          if (b < 2 || b > 6) continue;
          let a = 0;
          for (let k = 0; k < 8; k++) if (!p[k] && p[(k + 1) % 8]) a++;
          if (a !== 1) continue;
          const [p2, , p4, , p6, , p8] = p;
          if (step === 0 ? p2 * p4 * p6 || p4 * p6 * p8 : p2 * p4 * p8 || p2 * p6 * p8) continue;
          remove.push(r * side + c);
        }
      }
      for (const i of remove) img[i] = 0;
      if (remove.length) changed = true;
    }
  }
  return img;
}

// The skeleton as a graph: 4-neighbours always connect; a diagonal only when no skeleton pixel is
// 4-adjacent to both ends, so an L-shaped staircase is a path and not a triangle of false junctions.
function skeleton_graph(skeleton) {
  const on = (r, c) => r >= 0 && c >= 0 && r < side && c < side && skeleton[r * side + c] === 1;
  const neighbours = new Map();
  for (let r = 0; r < side; r++) {
    for (let c = 0; c < side; c++) {
      if (!on(r, c)) continue;
      const list = [];
      for (const [dr, dc] of [[-1, 0], [0, 1], [1, 0], [0, -1]]) {
        if (on(r + dr, c + dc)) list.push((r + dr) * side + c + dc);
      }
      for (const [dr, dc] of [[-1, -1], [-1, 1], [1, 1], [1, -1]]) {
        if (on(r + dr, c + dc) && !on(r + dr, c) && !on(r, c + dc)) list.push((r + dr) * side + c + dc);
      }
      neighbours.set(r * side + c, list);
    }
  }
  return neighbours;
}

// Walks the graph into pixel paths, each edge once: from endpoints, then junctions, then whatever is
// left (closed loops such as a 0 with no end).
function walk_paths(neighbours) {
  const visited = new Set();
  const edge = (a, b) => (a < b ? `${a},${b}` : `${b},${a}`);
  const degree = (p) => neighbours.get(p).length;
  const nodes = [...neighbours.keys()];
  const starts = [...nodes.filter((p) => degree(p) === 1), ...nodes.filter((p) => degree(p) >= 3), ...nodes];
  const paths = [];
  for (const start of starts) {
    for (const first of neighbours.get(start)) {
      if (visited.has(edge(start, first))) continue;
      visited.add(edge(start, first));
      const path = [start, first];
      let current = first;
      while (degree(current) === 2) {
        const next = neighbours.get(current).find((q) => !visited.has(edge(current, q)));
        if (next === undefined) break;
        visited.add(edge(current, next));
        path.push(next);
        current = next;
        if (current === start) break;  // a closed loop
      }
      paths.push(path);
    }
  }
  // A lone skeleton pixel (a dot) is a path of its own.
  for (const p of nodes) if (degree(p) === 0) paths.push([p]);
  return paths.map((path) => path.map((p) => [Math.floor(p / side), p % side]));
}

const direction = (from, to) => {
  const dr = to[0] - from[0], dc = to[1] - from[1];
  const length = Math.hypot(dr, dc) || 1;
  return [dr / length, dc / length];
};
const same_point = (a, b) => a[0] === b[0] && a[1] === b[1];

// Heading of a path's last few pixels leaving its end (pixel paths are too jagged for one step).
function end_heading(path) {
  const k = Math.min(path.length - 1, 3);
  return direction(path[path.length - 1 - k], path[path.length - 1]);
}

// Spurs: short branches from an end to a junction, thinning noise on thick strokes. Dropped only when
// the path has a free end, so a short real piece (the bar of a 4 between two junctions) stays.
function prune_spurs(paths, neighbours) {
  const degree = ([r, c]) => neighbours.get(r * side + c).length;
  return paths.filter((path) => {
    if (path.length > 2) return true;
    const ends = [degree(path[0]), degree(path[path.length - 1])];
    return !(ends.includes(1) && ends.some((d) => d >= 3));
  });
}

// Joins pieces that meet at a shared pixel and continue in nearly the same direction, the way a pen
// goes through a junction rather than lifting there: fewer strokes, fewer rounded blobs at junctions.
function join_continuations(paths) {
  const result = paths.map((p) => p.slice());
  for (let joined = true; joined;) {
    joined = false;
    let best = null;
    for (let i = 0; i < result.length; i++) {
      for (let j = 0; j < result.length; j++) {
        if (i === j) continue;
        for (const flip_i of [false, true]) {
          for (const flip_j of [false, true]) {
            const a = flip_i ? result[i].slice().reverse() : result[i];
            const b = flip_j ? result[j].slice().reverse() : result[j];
            if (a.length < 2 || b.length < 2 || !same_point(a[a.length - 1], b[0])) continue;
            const out = end_heading(a);
            const into = end_heading(b.slice().reverse());  // heading from b's start inwards, reversed
            const straightness = -(out[0] * into[0] + out[1] * into[1]);
            if (straightness > 0.3 && (!best || straightness > best.straightness)) best = { i, j, a, b, straightness };
          }
        }
      }
    }
    if (best) {
      const merged = best.a.concat(best.b.slice(1));
      result.splice(Math.max(best.i, best.j), 1);
      result.splice(Math.min(best.i, best.j), 1);
      result.push(merged);
      joined = true;
    }
  }
  return result;
}

// A moving average over the pixel staircase, ends kept, so strokes curve like a hand's.
function smooth(path) {
  if (path.length < 3) return path;
  const closed = same_point(path[0], path[path.length - 1]);
  return path.map((p, k) => {
    if (!closed && (k === 0 || k === path.length - 1)) return p;
    const prev = path[k === 0 ? path.length - 2 : k - 1];
    const next = path[k === path.length - 1 ? 1 : k + 1];
    return [(prev[0] + 2 * p[0] + next[0]) / 4, (prev[1] + 2 * p[1] + next[1]) / 4];
  });
}

// Drops points that lie within tolerance of the line between their neighbours (Ramer-Douglas-Peucker):
// fewer mouse moves, the same shape.
function simplify(path, tolerance = 0.35) {
  if (path.length < 3) return path;
  const [a, b] = [path[0], path[path.length - 1]];
  let worst = -1, worst_distance = 0;
  for (let k = 1; k < path.length - 1; k++) {
    const p = path[k];
    const dr = b[0] - a[0], dc = b[1] - a[1];
    const length = Math.hypot(dr, dc);
    const distance = length === 0 ? Math.hypot(p[0] - a[0], p[1] - a[1])
                                  : Math.abs(dr * (a[1] - p[1]) - dc * (a[0] - p[0])) / length;
    if (distance > worst_distance) [worst, worst_distance] = [k, distance];
  }
  if (worst_distance <= tolerance) return [a, b];
  return simplify(path.slice(0, worst + 1), tolerance).slice(0, -1).concat(simplify(path.slice(worst), tolerance));
}

// Thinning eats about half the stroke width off each free end; a pen starts where the ink starts.
// Moves a free end outwards along its heading while it stays on ink, less the pen's own radius.
function extend_free_ends(path, ink, neighbours, radius) {
  const free = ([r, c]) => neighbours.get(r * side + c).length === 1;
  const on_ink = ([r, c]) => {
    const [rr, cc] = [Math.round(r), Math.round(c)];
    return rr >= 0 && cc >= 0 && rr < side && cc < side && ink[rr * side + cc] === 1;
  };
  const extend = (p) => {
    const end = p[p.length - 1];
    if (p.length < 2 || !free(end)) return p;
    const [dr, dc] = end_heading(p);
    let reach = 0;
    while (reach < 4 && on_ink([end[0] + (reach + 0.5) * dr, end[1] + (reach + 0.5) * dc])) reach += 0.5;
    const by = reach - radius;
    return by > 0.25 ? p.concat([[end[0] + by * dr, end[1] + by * dc]]) : p;
  };
  return extend(extend(path).reverse()).reverse();
}

function trace_skeleton(pixels) {
  const ink = threshold(pixels);
  const skeleton = zhang_suen(ink);
  const neighbours = skeleton_graph(skeleton);
  if (neighbours.size === 0) return { strokes: [], pen_width: 1 / side };
  const paths = join_continuations(prune_spurs(walk_paths(neighbours), neighbours));

  // Mean thickness = ink area / skeleton length, the ink counted as grey mass so anti-aliased edges
  // count partly, as they do for the network.
  let mass = 0;
  for (let i = 0; i < pixels.length; i++) mass += pixels[i] / 255;
  let length = 0;
  for (const path of paths) {
    for (let k = 1; k < path.length; k++) length += Math.hypot(...path[k].map((v, axis) => v - path[k - 1][axis]));
  }
  const thickness = Math.min(Math.max(mass / Math.max(length, 1), 1), 5);

  const strokes = paths.map((path) => simplify(smooth(extend_free_ends(path, ink, neighbours, thickness / 2))))
                       .map((path) => path.map(to_canvas));
  return { strokes, pen_width: thickness / side };
}
