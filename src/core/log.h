// Logging goes through spdlog's default logger, which writes to stderr so that stdout
// stays free for machine-readable output (ids from `zflow tokenize`, JSON from `info`).
#pragma once

#include <spdlog/spdlog.h>

namespace zflow::log {

void set_verbosity(int level);  // 0 = warnings only, 1 = info (default), 2 = debug

using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::warn;

}  // namespace zflow::log
