// The browser demo's entry point: GLFW (Emscripten's built-in implementation) + WebGL2 + Dear ImGui 1.86.
// The loop reads like a native ImGui example; main_loop.hpp hands it to the browser. The canvas fills the
// page: each frame it follows the element's CSS size times the device pixel ratio, so it stays sharp on
// high-DPI screens and follows window resizes and phone rotations.
#include <GLFW/glfw3.h>
#include <GLES3/gl3.h>
#include <emscripten/html5.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <thread>

#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>

#include "demo_app.hpp"
#include "main_loop.hpp"

namespace {

std::unique_ptr<capsnet::DemoApp> app;
GLFWwindow* window = nullptr;

// Pointer events go to the drawing canvas as they arrive: ImGui samples the mouse once per frame, which
// would turn a quick stroke into a few straight segments. ImGui's backend chains to these callbacks.
void on_cursor_moved(GLFWwindow*, double x, double y) { app->pointer_move(static_cast<float>(x), static_cast<float>(y)); }
void on_mouse_button(GLFWwindow* w, int button, int action, int) {
    if (button != GLFW_MOUSE_BUTTON_LEFT) return;
    double x = 0, y = 0;
    glfwGetCursorPos(w, &x, &y);
    if (action == GLFW_PRESS) app->pointer_down(static_cast<float>(x), static_cast<float>(y));
    else app->pointer_up();
}

// The canvas's size in device pixels: its CSS size (100% of the page, see web/index.html) times the
// device pixel ratio.
void follow_canvas_size() {
    double css_width = 0, css_height = 0;
    emscripten_get_element_css_size("#canvas", &css_width, &css_height);
    const double ratio = emscripten_get_device_pixel_ratio();
    const int width = std::max(1, static_cast<int>(std::lround(css_width * ratio)));
    const int height = std::max(1, static_cast<int>(std::lround(css_height * ratio)));
    int current_width = 0, current_height = 0;
    glfwGetWindowSize(window, &current_width, &current_height);
    if (width != current_width || height != current_height) glfwSetWindowSize(window, width, height);
}

void frame() {
    follow_canvas_size();
    glfwPollEvents();
    ImGui_ImplOpenGL3_NewFrame();
    ImGui_ImplGlfw_NewFrame();
    ImGui::NewFrame();
    const ImVec2 size = ImGui::GetIO().DisplaySize;
    app->frame(size.x, size.y);
    ImGui::Render();
    int width = 0, height = 0;
    glfwGetFramebufferSize(window, &width, &height);
    glViewport(0, 0, width, height);
    glClearColor(0.08f, 0.08f, 0.09f, 1.0f);
    glClear(GL_COLOR_BUFFER_BIT);
    ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
}

}  // namespace

capsnet::DemoApp* demo_app_instance() { return app.get(); }

int main() {
    capsnet::demo_use_gemm_threads(static_cast<int>(std::thread::hardware_concurrency()));  // one per core

    if (!glfwInit()) {
        std::fprintf(stderr, "capsnet demo: glfwInit failed\n");
        return 1;
    }
    glfwWindowHint(GLFW_CLIENT_API, GLFW_OPENGL_ES_API);
    glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
    glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 0);
    window = glfwCreateWindow(1280, 800, "CapsNet", nullptr, nullptr);
    if (!window) {
        std::fprintf(stderr, "capsnet demo: no WebGL2 context (glfwCreateWindow failed)\n");
        return 1;
    }
    glfwMakeContextCurrent(window);

    // Sizes in ImGui are device pixels; scale the UI by the pixel ratio (a little more on small screens,
    // where it is read at arm's length and touched with a finger).
    double css_width = 0, css_height = 0;
    emscripten_get_element_css_size("#canvas", &css_width, &css_height);
    const float ui_scale = static_cast<float>(emscripten_get_device_pixel_ratio()) * (css_width < 700 ? 1.3f : 1.0f);

    IMGUI_CHECKVERSION();
    ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    io.IniFilename = nullptr;  // the view lives in the URL, not in local storage
    ImFontConfig font;
    font.SizePixels = std::round(13.0f * ui_scale);
    io.Fonts->AddFontDefault(&font);
    ImGui::StyleColorsDark();
    ImGui::GetStyle().ScaleAllSizes(ui_scale);

    app = std::make_unique<capsnet::DemoApp>(ui_scale);
    glfwSetCursorPosCallback(window, on_cursor_moved);
    glfwSetMouseButtonCallback(window, on_mouse_button);
    ImGui_ImplGlfw_InitForOpenGL(window, true);  // chains to the callbacks above
    ImGui_ImplOpenGL3_Init("#version 300 es");   // with IMGUI_IMPL_OPENGL_ES3: WebGL2, not WebGL1

    capsnet::main_loop_run(frame);
    return 0;
}
