// zflow: the command-line face of the engine.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "core/error.h"
#include "core/log.h"

int main(int argc, char** argv) {
  CLI::App app{"zflow: text-to-image with Z-Image and FLUX"};
  app.require_subcommand(1);
  int verbosity = 1;
  app.add_flag("-v,--verbose", verbosity, "more logging (-vv for debug)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    zflow::log::set_verbosity(verbosity);
  } catch (const zflow::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
