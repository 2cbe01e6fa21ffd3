# Writes a C++ source whose function NAME returns the text of file IN, as a raw string.
# Usage: cmake -DIN=... -DOUT=... -DNAMESPACE=... -DNAME=... -P embed_text.cmake
file(READ "${IN}" content)
string(FIND "${content}" ")zflow_text\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )zflow_text\"")
endif()
file(WRITE "${OUT}.tmp"
  "// Generated from ${IN} by cmake/embed_text.cmake; do not edit.\n"
  "#include <string_view>\n"
  "namespace ${NAMESPACE} {\n"
  "std::string_view ${NAME}() {\n"
  "  static constexpr std::string_view text = R\"zflow_text(${content})zflow_text\";\n"
  "  return text;\n"
  "}\n"
  "}  // namespace ${NAMESPACE}\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
