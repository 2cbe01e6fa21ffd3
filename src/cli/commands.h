// Each zflow subcommand registers its options on the CLI11 app and returns the
// function that runs it once the command line is parsed.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace zflow::cli {

using Run = std::function<int()>;

Run add_info_command(CLI::App& app);
Run add_bench_command(CLI::App& app);
Run add_tokenize_command(CLI::App& app);
Run add_generate_command(CLI::App& app);
Run add_serve_command(CLI::App& app);
Run add_convert_command(CLI::App& app);
Run add_upscale_command(CLI::App& app);

}  // namespace zflow::cli
