// --pre-js for the wasm tests: copies node's environment into Emscripten's, whose getenv otherwise sees
// only a few defaults (so CAPSNET_DATA_DIR and CAPSNET_REQUIRE_DATA would be ignored under node).
Module['preRun'] = Module['preRun'] || [];
Module['preRun'].push(function () {
  if (typeof process === 'undefined' || !process.env) return;
  for (var key in process.env) ENV[key] = process.env[key];
});
