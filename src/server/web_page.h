// The web page served at `/`: one self-contained HTML file (src/server/web/index.html), compiled
// into the binary at build time so the server needs no files beside it and no build step.
#pragma once

#include <string_view>

namespace zflow::server {

std::string_view web_page_html();

}  // namespace zflow::server
