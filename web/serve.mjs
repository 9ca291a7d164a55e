// A dependency-free static server for the browser demo, loopback only:
//   node web/serve.mjs --root <site folder> [--port 8080] [--host 127.0.0.1] [--no-isolation-headers]
// It sends the cross-origin isolation headers (COOP/COEP), which the demo needs: its module shares its
// memory with the worker threads its GEMMs run on (SharedArrayBuffer). --no-isolation-headers leaves
// them out, as a static host would, so the page's fallback (web/isolation_worker.js) can be tried. Also
// Content-Length so the page can show download progress, and no-cache so a rebuilt site is never mixed
// with a cached one. Tests import startServer() instead of running the CLI.
import { createServer } from 'node:http';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const mime_types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.safetensors': 'application/octet-stream',
  '.bin': 'application/octet-stream',
};

const loopback_hosts = new Set(['127.0.0.1', '::1', 'localhost']);

const isolation_headers = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};
const plain_headers = {
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-cache',
  'X-Content-Type-Options': 'nosniff',
};

function send_text(response, headers, status, text, head_only) {
  const body = Buffer.from(text + '\n');
  response.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8',
                               'Content-Length': body.length });
  response.end(head_only ? undefined : body);
}

// Maps a request path onto a file under root, or null when it would leave root or is malformed.
// Symbolic links inside the site are followed: the build may link files (the model) into it.
function resolve_under_root(root, url_path) {
  let decoded;
  try {
    decoded = decodeURIComponent(url_path);
  } catch {
    return null;  // '%ZZ' and the like
  }
  if (decoded.includes('\0')) return null;
  if (decoded.endsWith('/')) decoded += 'index.html';
  // Resolve as if rooted at '/', so '..' can never climb above it, then check again to be sure.
  const relative = path.posix.normalize('/' + decoded.replace(/\\/g, '/')).slice(1);
  const file = path.resolve(root, relative);
  if (file !== root && !file.startsWith(root + path.sep)) return null;
  return file;
}

async function handle(root, common_headers, request, response) {
  const send = (status, text, head_only) => send_text(response, common_headers, status, text, head_only);
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    return send(405, 'method not allowed', false);
  }
  const head_only = request.method === 'HEAD';
  const url_path = (request.url || '/').split(/[?#]/, 1)[0];
  let file = resolve_under_root(root, url_path);
  if (!file) return send(404, 'not found', head_only);
  let stat;
  try {
    stat = await fs.stat(file);
    if (stat.isDirectory()) {
      file = path.join(file, 'index.html');
      stat = await fs.stat(file);
    }
  } catch {
    return send(404, 'not found', head_only);
  }
  if (!stat.isFile()) return send(404, 'not found', head_only);
  const type = mime_types[path.extname(file).toLowerCase()] || 'application/octet-stream';
  response.writeHead(200, { ...common_headers, 'Content-Type': type, 'Content-Length': stat.size });
  if (head_only) return response.end();
  const stream = createReadStream(file);
  stream.on('error', () => response.destroy());
  stream.pipe(response);
}

// Starts serving root on host:port (port 0: a free one), with the isolation headers unless isolation is
// false. Resolves to {url, port, close()} once listening; rejects with a readable message for a
// non-loopback host, a missing root/index.html or a taken port.
export async function startServer({ root, port = 8080, host = '127.0.0.1', isolation = true } = {}) {
  if (!loopback_hosts.has(host))
    throw new Error(`refusing to serve on host '${host}': only loopback (127.0.0.1, ::1, localhost) is allowed`);
  if (!root) throw new Error('no --root given (the site folder, e.g. build/wasm/site)');
  let real_root;
  try {
    real_root = await fs.realpath(path.resolve(root));
  } catch {
    throw new Error(`site folder ${root} does not exist (build the wasm site first)`);
  }
  try {
    await fs.access(path.join(real_root, 'index.html'));
  } catch {
    throw new Error(`site folder ${root} has no index.html (build the wasm site first)`);
  }
  const common_headers = isolation ? { ...isolation_headers, ...plain_headers } : plain_headers;
  const server = createServer((request, response) => {
    handle(real_root, common_headers, request, response).catch(() => response.destroy());
  });
  const sockets = new Set();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve, reject) => {
    server.once('error', (error) => {
      if (error.code === 'EADDRINUSE')
        reject(new Error(`port ${port} on ${host} is already in use (pick another --port, or 0 for any free one)`));
      else if (error.code === 'EACCES')
        reject(new Error(`no permission to listen on port ${port} (ports below 1024 need root)`));
      else reject(error);
    });
    server.listen(port, host, resolve);
  });
  const actual_port = server.address().port;
  const url_host = host === '::1' ? '[::1]' : host;
  return {
    url: `http://${url_host}:${actual_port}/`,
    port: actual_port,
    root: real_root,
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();  // keep-alive connections would hold close() open
      });
    },
  };
}

const usage = 'usage: node web/serve.mjs --root <site folder> [--port 8080] [--host 127.0.0.1] [--no-isolation-headers]';

function parse_arguments(argv) {
  const options = { root: null, port: 8080, host: '127.0.0.1', isolation: true };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    const value = argv[i + 1];
    if (name === '-h' || name === '--help') {
      console.log(usage);
      process.exit(0);
    }
    if (name === '--no-isolation-headers') {  // as a static host: the page isolates itself (isolation_worker.js)
      options.isolation = false;
      continue;
    }
    if (!['--root', '--port', '--host'].includes(name)) throw new Error(`unknown argument '${name}'`);
    if (value === undefined) throw new Error(`${name} needs a value`);
    i++;
    if (name === '--port') {
      if (!/^\d+$/.test(value) || Number(value) > 65535) throw new Error(`--port must be 0-65535, got '${value}'`);
      options.port = Number(value);
    } else {
      options[name.slice(2)] = value;
    }
  }
  if (!options.root) throw new Error('--root <site folder> is required');
  return options;
}

async function main() {
  let server;
  try {
    const options = parse_arguments(process.argv.slice(2));
    server = await startServer(options);
    console.log(`serving ${server.root} at ${server.url}` +
                (options.isolation ? '' : ' without the cross-origin isolation headers'));
  } catch (error) {
    console.error(`serve.mjs: error: ${error.message}`);
    console.error(usage);
    process.exit(1);
  }
  const stop = async (signal) => {
    await server.close();
    console.log(`serve.mjs: stopped (${signal})`);
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
