// zflow: the command-line face of the engine.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>

#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"

int main(int argc, char** argv) {
  CLI::App app{"zflow: text-to-image with Z-Image and FLUX"};
  app.require_subcommand(1);
  // Info by default (what was loaded, each stage's time), as other image generators print.
  int verbosity = 1;
  app.add_flag_callback(
      "-v,--verbose", [&] { verbosity = 2; }, "debug logging");
  app.add_flag_callback(
      "-q,--quiet", [&] { verbosity = 0; }, "warnings and errors only");

  std::map<CLI::App*, zflow::cli::Run> commands;
  auto add = [&](zflow::cli::Run (*adder)(CLI::App&)) {
    auto run = adder(app);
    commands[app.get_subcommands({}).back()] = std::move(run);
  };
  add(zflow::cli::add_info_command);
  add(zflow::cli::add_bench_command);
  add(zflow::cli::add_tokenize_command);
  add(zflow::cli::add_generate_command);
  add(zflow::cli::add_serve_command);
  add(zflow::cli::add_convert_command);
  add(zflow::cli::add_upscale_command);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    zflow::log::set_verbosity(verbosity);
    for (auto& [sub, run] : commands)
      if (sub->parsed()) return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
