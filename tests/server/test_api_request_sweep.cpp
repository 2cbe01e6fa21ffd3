// Every field any API reads, set to every kind of JSON value, on a valid request of each API: the
// parser either accepts the request or refuses it with an ApiError (4xx) whose message names the
// field; it never lets another exception out (which the server could only answer with a 500 and
// a library's words, such as nlohmann's "type must be string"). The field list is every quoted
// name in api_request.cpp, so a field added there is swept without an edit here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/image.h"
#include "server/api_request.h"
#include "server/base64.h"
#include "test_util.h"

namespace zflow::server {
namespace {

using nlohmann::json;

// The quoted lower-case names in the parser's source: the fields it reads (and some values,
// which do no harm as extra fields).
std::set<std::string> field_names() {
  // The source tree: tests/fixtures' grandparent (this test runs where the tree is, in CI).
  const std::filesystem::path root =
      std::filesystem::path(ZFLOW_FIXTURES_DIR).parent_path().parent_path();
  std::ifstream in(root / "src/server/api_request.cpp");
  std::stringstream text;
  text << in.rdbuf();
  const std::string source = text.str();
  std::set<std::string> names;
  const std::regex quoted("\"([a-z][a-z0-9_]*)\"");
  for (auto it = std::sregex_iterator(source.begin(), source.end(), quoted);
       it != std::sregex_iterator(); ++it)
    names.insert((*it)[1]);
  return names;
}

std::vector<json> odd_values(const std::string& png) {
  return {nullptr,
          true,
          0,
          -7,
          1.5,
          1e300,
          -1e300,
          json::number_unsigned_t{18446744073709551615ull},
          "",
          "x",
          "12",
          png,
          json::array(),
          json::array({1, "a"}),
          json::array({json::object()}),
          json::array({png}),
          json::object(),
          json{{"name", 1}, {"scale", "s"}, {"data", 5}, {"args", json::object()}}};
}

struct Api {
  std::string name;
  json base;
  std::function<void(const json&)> parse;
};

TEST(ApiRequestSweep, EveryFieldOfEveryTypeIsAcceptedOrRefusedByName) {
  const RequestLimits limits{};
  const std::string png =
      base64_encode(io::encode_png(io::Image{8, 8, std::vector<uint8_t>(8 * 8 * 3, 90)}));
  const std::vector<Api> apis = {
      {"openai",
       {{"prompt", "a cat"}},
       [&](const json& b) { parse_openai_generation(b, limits, "m"); }},
      {"openai edit",
       {{"prompt", "a cat"}},
       [&](const json& b) {
         OpenAiEdit edit;
         edit.fields = b;
         const std::vector<uint8_t> bytes = *base64_decode(png);
         edit.images = {std::string(bytes.begin(), bytes.end())};
         parse_openai_edit(edit, limits, "m");
       }},
      {"a1111 txt2img",
       {{"prompt", "a cat"}},
       [&](const json& b) { parse_a1111(b, false, limits, "m"); }},
      {"a1111 img2img",
       {{"prompt", "a cat"}, {"init_images", {png}}},
       [&](const json& b) { parse_a1111(b, true, limits, "m"); }},
      {"a1111 extras",
       {{"image", png}},
       [&](const json& b) { parse_a1111_extras(b, limits, "m"); }},
      {"a1111 extras batch",
       {{"imageList", {{{"data", png}, {"name", "a.png"}}}}},
       [&](const json& b) { parse_a1111_extras_batch(b, limits, "m"); }},
      {"a1111 png-info", {{"image", png}}, [&](const json& b) { png_info(b); }},
      {"native", {{"prompt", "a cat"}}, [&](const json& b) { parse_native_job(b, limits, "m"); }},
  };
  const std::set<std::string> fields = field_names();
  ASSERT_GT(fields.size(), 100u);  // the source was found and read
  const std::vector<json> values = odd_values(png);
  int refused = 0, accepted = 0;
  for (const Api& api : apis) {
    ASSERT_NO_THROW(api.parse(api.base)) << api.name << ": the base request is valid";
    for (const std::string& field : fields)
      for (const json& value : values) {
        json body = api.base;
        body[field] = value;
        try {
          api.parse(body);
          ++accepted;
        } catch (const ApiError& e) {
          ++refused;
          EXPECT_GE(e.status(), 400) << api.name << " " << field << " = " << value.dump();
          EXPECT_LT(e.status(), 500) << api.name << " " << field << " = " << value.dump();
          // The message names the field at fault: the one swept (the base request is valid),
          // a part of it (loras[0].name) or the field it needs beside it (a controlnet's
          // control_image).
          EXPECT_FALSE(e.param().empty()) << api.name << " " << field << ": " << e.what();
          EXPECT_NE(std::string(e.what()).find(e.param()), std::string::npos) << e.what();
          if (!e.param().starts_with(field) &&
              !(field == "controlnet" && e.param() == "control_image"))
            ADD_FAILURE() << api.name << " " << field << " = " << value.dump().substr(0, 40) << ": "
                          << e.what();
        } catch (const std::exception& e) {
          ADD_FAILURE() << api.name << ": " << field << " = " << value.dump().substr(0, 60)
                        << " let out a non-API error: " << e.what();
        }
      }
  }
  RecordProperty("accepted", accepted);
  RecordProperty("refused", refused);
  EXPECT_GT(refused, 1000);
}

}  // namespace
}  // namespace zflow::server
