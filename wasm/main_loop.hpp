// The one place that knows the browser drives the loop: Emscripten cannot block in a `while` loop, so the
// frame function is handed to the browser's animation-frame callback instead. Everything else reads like a
// native ImGui main loop.
#pragma once

#include <functional>

#include <emscripten.h>

namespace capsnet {

inline void main_loop_run(std::function<void()> frame) {
    static std::function<void()> current;
    current = std::move(frame);
    // fps 0 = requestAnimationFrame; simulate_infinite_loop = 1: main() does not return into the caller.
    emscripten_set_main_loop([] { current(); }, 0, 1);
}

}  // namespace capsnet
