// What the C++ app asks of the page (web/demo.js, window.capsnetPage): the URL fragment, the clipboard,
// file downloads, the clock and the browser's storage. Implemented with EM_JS in demo_page.cpp; the only browser calls the app makes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace capsnet {

void page_set_fragment(const std::string& fragment);  // history.replaceState: no reload, no history entry
void page_copy_link();                                 // copies the page's current URL to the clipboard
void page_download(const std::string& file_name, const std::vector<std::uint8_t>& bytes, const std::string& mime);
double page_now_ms();                                  // performance.now()
// The Teach panel's personal set (gallery_serialize's bytes) into the browser's localStorage; web/demo.js
// hands it back at the next load.
void page_store_personal(const std::vector<std::uint8_t>& bytes);

}  // namespace capsnet
