#include "demo_page.hpp"

#include <emscripten.h>

// Each call checks for window.capsnetPage so the module also runs without the page's glue (e.g. under
// a test harness) and simply does nothing there.
EM_JS(void, js_set_fragment, (const char* fragment), {
  if (globalThis.capsnetPage) globalThis.capsnetPage.setFragment(UTF8ToString(fragment));
});
EM_JS(void, js_copy_link, (), {
  if (globalThis.capsnetPage) globalThis.capsnetPage.copyLink();
});
EM_JS(void, js_download, (const char* name, const std::uint8_t* data, int size, const char* mime), {
  if (globalThis.capsnetPage)
    globalThis.capsnetPage.download(UTF8ToString(name), HEAPU8.slice(data, data + size), UTF8ToString(mime));
});
EM_JS(void, js_store_personal, (const std::uint8_t* data, int size), {
  if (globalThis.capsnetPage) globalThis.capsnetPage.storePersonal(HEAPU8.slice(data, data + size));
});

namespace capsnet {

void page_set_fragment(const std::string& fragment) { js_set_fragment(fragment.c_str()); }
void page_copy_link() { js_copy_link(); }
void page_download(const std::string& file_name, const std::vector<std::uint8_t>& bytes, const std::string& mime) {
    js_download(file_name.c_str(), bytes.data(), static_cast<int>(bytes.size()), mime.c_str());
}
double page_now_ms() { return emscripten_get_now(); }
void page_store_personal(const std::vector<std::uint8_t>& bytes) {
    js_store_personal(bytes.data(), static_cast<int>(bytes.size()));
}

}  // namespace capsnet
