// The page's glue around the wasm app (wasm/demo_*.cpp): downloads the model with a progress bar, hands it,
// the MNIST gallery and the Teach panel's digits to the module, keeps the personal examples in localStorage
// and the URL fragment (the share link) in sync, turns touches into mouse events for Emscripten's GLFW, and
// exposes window.capsnetDemo for the tests and the benchmark.
'use strict';

(function () {
  const MODEL_ID = 'capsnet-seed-i8';
  const MODEL_URL = 'model/' + MODEL_ID + '.safetensors';
  const GALLERY_URL = 'gallery/mnist-test-gallery.bin';
  // The Teach panel: training digits mixed into every fine-tuning batch, test digits to check what was forgotten.
  const TEACH_MIX_URL = 'gallery/mnist-train-mix.bin';
  const TEACH_CHECK_URL = 'gallery/mnist-test-500.bin';
  const PERSONAL_KEY = 'capsnet-teach-examples-v1';  // localStorage: base64 of the personal set (a gallery file)

  const canvas = document.getElementById('canvas');
  const overlay = document.getElementById('overlay');
  const message = document.getElementById('message');
  const progressBar = document.getElementById('progress-bar');

  function showProgress(text, fraction) {
    message.textContent = text;
    message.className = '';
    progressBar.style.width = Math.round(100 * Math.max(0, Math.min(1, fraction))) + '%';
  }
  function showError(text) {
    overlay.classList.remove('hidden');
    message.textContent = text;
    message.className = 'error';
  }

  // ---- the module ----------------------------------------------------------------------------------
  let resolveRuntime, rejectRuntime;
  let runtimeIsReady = false;
  const runtimeReady = new Promise((resolve, reject) => { resolveRuntime = resolve; rejectRuntime = reject; });
  window.Module = {
    canvas: canvas,
    print: (text) => console.log(text),
    printErr: (text) => console.warn(text),
    onRuntimeInitialized: () => { runtimeIsReady = true; resolveRuntime(); },
    onAbort: (what) => rejectRuntime(new Error('the app stopped: ' + what)),
  };

  // Strings into the wasm heap with malloc, not the stack: a hostile 100 KB fragment must not overflow it.
  function withCString(text, use) {
    const size = Module.lengthBytesUTF8(text) + 1;
    const pointer = Module._malloc(size);
    Module.stringToUTF8(text, pointer, size);
    try { return use(pointer); } finally { Module._free(pointer); }
  }
  function withBytes(bytes, use) {
    const pointer = Module._malloc(Math.max(1, bytes.length));
    // A view of the memory as it is now: a worker thread that grew it leaves Module.HEAPU8 short.
    new Uint8Array(Module.wasmMemory.buffer).set(bytes, pointer);
    try { return use(pointer, bytes.length); } finally { Module._free(pointer); }
  }
  const text = (pointer) => Module.UTF8ToString(pointer);

  // Resolves once the app has drawn `target` frames in all (checked once per animation frame).
  function frameCountReaches(target) {
    return new Promise((resolve) => {
      const poll = () => (Module._demo_frame_count() >= target ? resolve() : requestAnimationFrame(poll));
      poll();
    });
  }

  async function download(url, onProgress) {
    let response;
    try {
      response = await fetch(url);
    } catch (error) {
      throw new Error('could not download ' + url + ': ' + error.message);
    }
    if (!response.ok) throw new Error('could not download ' + url + ': HTTP ' + response.status + ' ' + response.statusText);
    const total = Number(response.headers.get('Content-Length')) || 0;
    if (!response.body || !total) return new Uint8Array(await response.arrayBuffer());
    const reader = response.body.getReader();
    const bytes = new Uint8Array(total);
    let received = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (received + value.length > total) throw new Error(url + ' is longer than its Content-Length');
      bytes.set(value, received);
      received += value.length;
      onProgress(received / total);
    }
    if (received !== total) throw new Error(url + ' was cut short: ' + received + ' of ' + total + ' bytes');
    return bytes;
  }

  async function start() {
    // Not isolated: the page installs its service worker first (below), and a reload or an error follows.
    if (!window.crossOriginIsolated) await runtimeReady;
    showProgress('Downloading the model...', 0);
    const modelBytes = download(MODEL_URL, (fraction) => {
      showProgress('Downloading the model... ' + Math.round(100 * fraction) + '%', fraction);
      if (runtimeIsReady && Module._demo_frame_count() > 0) Module._demo_loading_progress(fraction);
    });
    const optional = (url) => download(url, () => {}).catch((error) => {
      console.warn(error.message);
      return null;
    });
    const galleryBytes = optional(GALLERY_URL);
    const teachBytes = Promise.all([optional(TEACH_MIX_URL), optional(TEACH_CHECK_URL)]);
    await runtimeReady;
    await frameCountReaches(1);  // main() has created the app
    let model;
    try {
      model = await modelBytes;
    } catch (error) {
      withCString(error.message, (pointer) => Module._demo_model_failed(pointer));
      throw error;
    }
    showProgress('Starting...', 1);
    const failure = withBytes(model, (pointer, size) =>
      withCString(MODEL_ID, (id) => text(Module._demo_load_model(pointer, size, id))));
    if (failure) throw new Error('the model file ' + MODEL_URL + ' is not usable: ' + failure);
    const gallery = await galleryBytes;
    if (gallery) {
      const problem = withBytes(gallery, (pointer, size) => text(Module._demo_load_gallery(pointer, size)));
      if (problem) console.warn(GALLERY_URL + ': ' + problem);
    }
    const [mix, check] = await teachBytes;
    if (mix && check) {
      const problem = withBytes(mix, (mixPointer, mixSize) => withBytes(check, (checkPointer, checkSize) =>
        text(Module._demo_load_teach_digits(mixPointer, mixSize, checkPointer, checkSize))));
      if (problem) console.warn(TEACH_MIX_URL + ', ' + TEACH_CHECK_URL + ': ' + problem);
    }
    loadPersonal();
    openFragment(location.hash);
    window.addEventListener('hashchange', () => openFragment(location.hash));
    overlay.classList.add('hidden');
    // `ready` means the full interface is on screen (canvasRect is valid): two more frames.
    await frameCountReaches(Module._demo_frame_count() + 2);
  }

  // ---- the Teach panel's personal set in localStorage ------------------------------------------------
  function toBase64(bytes) {
    let binary = '';
    for (let i = 0; i < bytes.length; i += 8192) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    return btoa(binary);
  }
  function loadPersonal() {
    let stored = null;
    try { stored = localStorage.getItem(PERSONAL_KEY); } catch (error) { console.warn('localStorage: ' + error.message); }
    if (!stored) return;
    let bytes;
    try {
      bytes = Uint8Array.from(atob(stored), (c) => c.charCodeAt(0));
    } catch (error) {
      console.warn('the stored Teach examples are not base64; ignoring them');
      return;
    }
    const problem = withBytes(bytes, (pointer, size) => text(Module._demo_load_personal(pointer, size)));
    if (problem) console.warn('the stored Teach examples could not be read (' + problem + '); ignoring them');
  }

  let ownFragment = '';
  function openFragment(hash) {
    const fragment = hash.startsWith('#') ? hash.slice(1) : hash;
    if (!fragment || fragment === ownFragment) return;
    withCString(fragment, (pointer) => Module._demo_open_fragment(pointer));
  }

  // ---- what the app asks of the page (wasm/demo_page.cpp) -------------------------------------------
  window.capsnetPage = {
    setFragment(fragment) {
      ownFragment = fragment;
      history.replaceState(null, '', '#' + fragment);
    },
    copyLink() {
      const link = location.href;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(link).catch(() => copyWithTextArea(link));
      } else {
        copyWithTextArea(link);
      }
    },
    storePersonal(bytes) {
      try {
        if (bytes.length <= 8) localStorage.removeItem(PERSONAL_KEY);  // the header alone: no examples
        else localStorage.setItem(PERSONAL_KEY, toBase64(bytes));
      } catch (error) {
        console.warn('could not keep the Teach examples in localStorage: ' + error.message);
      }
    },
    download(name, bytes, mime) {
      const url = URL.createObjectURL(new Blob([bytes], { type: mime }));
      const anchor = document.createElement('a');
      anchor.href = url;
      anchor.download = name;
      document.body.appendChild(anchor);
      anchor.click();
      anchor.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    },
  };
  function copyWithTextArea(link) {
    const area = document.createElement('textarea');
    area.value = link;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand('copy'); } catch (error) { console.warn('copy failed: ' + error.message); }
    area.remove();
  }

  // ---- touch: Emscripten 3.1.6's GLFW ignores touch positions, so a finger becomes a mouse ------------
  // Capture-phase listeners on window run before GLFW's listeners on the canvas; they stop the touch
  // event and replay it as mouse events, which GLFW (and so ImGui and the drawing canvas) handles.
  let activeTouch = null;
  function replayAsMouse(type, touch) {
    canvas.dispatchEvent(new MouseEvent(type, {
      bubbles: true, cancelable: true, view: window, button: 0, buttons: type === 'mouseup' ? 0 : 1,
      clientX: touch.clientX, clientY: touch.clientY, screenX: touch.screenX, screenY: touch.screenY,
    }));
  }
  function onTouch(event) {
    if (event.target !== canvas) return;
    event.preventDefault();
    event.stopPropagation();
    const touches = Array.from(event.changedTouches);
    if (event.type === 'touchstart') {
      if (activeTouch !== null) return;  // one finger draws; others are ignored
      const touch = touches[0];
      activeTouch = touch.identifier;
      replayAsMouse('mousemove', touch);
      replayAsMouse('mousedown', touch);
      return;
    }
    const touch = touches.find((t) => t.identifier === activeTouch);
    if (!touch) return;
    if (event.type === 'touchmove') {
      replayAsMouse('mousemove', touch);
    } else {  // touchend, touchcancel
      replayAsMouse('mouseup', touch);
      activeTouch = null;
    }
  }
  for (const type of ['touchstart', 'touchmove', 'touchend', 'touchcancel'])
    window.addEventListener(type, onTouch, { capture: true, passive: false });

  // ---- test and benchmark hooks ---------------------------------------------------------------------
  const ready = start().catch((error) => {
    showError(error.message);
    throw error;
  });
  ready.catch(() => {});  // reported on the page; callers of capsnetDemo.ready still see the rejection
  window.capsnetDemo = {
    ready,
    state: () => JSON.parse(text(Module._demo_state_json())),
    // The drawing square in CSS pixels relative to the viewport (the app works in device pixels).
    canvasRect() {
      const rect = JSON.parse(text(Module._demo_canvas_rect_json()));
      const bounds = canvas.getBoundingClientRect();
      const scale = bounds.width / canvas.width;
      return { x: bounds.left + rect.x * scale, y: bounds.top + rect.y * scale,
               width: rect.width * scale, height: rect.height * scale };
    },
    setPenWidth: (fraction) => Module._demo_set_pen_width(fraction),
    clear: () => Module._demo_clear(),
    selectCapsule: (digit) => Module._demo_select_capsule(digit),
    setViewTab: (tab) => Module._demo_set_view_tab(tab),  // 0 interpolation, 1 routing, 2 pose lab, 3 teach
    setRouting: (iteration, logits) => Module._demo_set_routing(iteration, logits ? 1 : 0),
    playRouting: () => Module._demo_play_routing(),        // what the Play button does
    // {rotation (degrees), scale, shear, translateX, translateY (fractions of the side), refit}; missing = identity
    setPose: (pose) => Module._demo_set_pose(pose.rotation || 0, pose.scale === undefined ? 1 : pose.scale,
                                             pose.shear || 0, pose.translateX || 0, pose.translateY || 0,
                                             pose.refit ? 1 : 0),
    showPoseSweep: (on) => Module._demo_show_pose_sweep(on ? 1 : 0),  // the Sweep button
    frameCount: () => Module._demo_frame_count(),
    downloadPng: () => Module._demo_download_png(),  // what the "Download PNG" button does
    benchmark: (repeats) => JSON.parse(text(Module._demo_benchmark_json(repeats || 10))),
    // The threads the page's GEMMs run on (1 to 4; by default one per core, at most 4).
    setGemmThreads: (threads) => Module._demo_set_gemm_threads(threads),
    gemmThreads: () => Module._demo_gemm_threads(),
    // The drawing becomes a 28x28 image (784 bytes, 0 = background), as a gallery click makes it.
    setInputImage: (pixels) => {
      if (pixels.length !== 784) throw new Error('setInputImage: 784 pixels, not ' + pixels.length);
      withBytes(Uint8Array.from(pixels), (pointer) => Module._demo_set_input_image(pointer));
    },
    // The Teach panel's buttons; each returns '' or why it did nothing. state().teach has the panel's state.
    teachAdd: (label) => text(Module._demo_teach_add(label)),
    teachRemove: (index) => text(Module._demo_teach_remove(index)),
    teachClear: () => text(Module._demo_teach_clear()),
    // {allLayers (false: digit capsules + decoder), steps (40), learningRate (the panel's default:
    // 1e-4 for the head, 5e-5 for every layer)}
    fineTune: (options = {}) => text(Module._demo_fine_tune(options.allLayers ? 1 : 0, options.steps || 40,
                                                            options.learningRate || 0)),
    stopFineTune: () => Module._demo_stop_fine_tune(),
    resetModel: () => text(Module._demo_reset_model()),
    downloadModel: () => text(Module._demo_download_model()),
  };

  // The module shares its memory with the worker threads its GEMMs run on, which browsers allow only on a
  // cross-origin isolated page; without it the module cannot even start. web/serve.mjs sends the headers
  // that isolate the page; a host that cannot gets them from isolation_worker.js, a service worker that
  // adds them to the site's responses: installed on the first visit, then one reload (the fragment, and so
  // a shared view, survives it). A second failure in the same tab stops with how to fix it.
  const ISOLATION_RELOAD_KEY = 'capsnet-isolation-reload';  // sessionStorage: the reload has been tried
  const howToIsolate = 'serve it with web/serve.mjs, or send the headers Cross-Origin-Opener-Policy: ' +
                       'same-origin and Cross-Origin-Embedder-Policy: require-corp';
  async function isolateWithServiceWorker() {
    if (!('serviceWorker' in navigator) || !window.isSecureContext)
      throw new Error('This page is not cross-origin isolated, which the demo needs for its threads, and ' +
                      'cannot install the service worker that would isolate it (that needs https or ' +
                      'localhost): ' + howToIsolate + '.');
    if (sessionStorage.getItem(ISOLATION_RELOAD_KEY)) {
      sessionStorage.removeItem(ISOLATION_RELOAD_KEY);
      throw new Error('This page is not cross-origin isolated even through its service worker ' +
                      '(isolation_worker.js), and the demo needs that for its threads: ' + howToIsolate + '.');
    }
    await navigator.serviceWorker.register('isolation_worker.js');
    await navigator.serviceWorker.ready;
    sessionStorage.setItem(ISOLATION_RELOAD_KEY, '1');
    location.reload();
  }
  if (!window.crossOriginIsolated) {
    showProgress('Installing the service worker that lets the demo use threads, then reloading...', 0);
    isolateWithServiceWorker().catch((error) => rejectRuntime(error));
    return;
  }
  sessionStorage.removeItem(ISOLATION_RELOAD_KEY);
  const script = document.createElement('script');
  script.src = 'capsnet_demo.js';
  script.onerror = () => rejectRuntime(new Error('could not load capsnet_demo.js'));
  document.body.appendChild(script);
})();
