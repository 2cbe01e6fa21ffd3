// PyTorch checkpoints as torch.save writes them (tools/golden/make_torch_checkpoint.py): every
// tensor of a Lightning-style file with float, integer, strided, offset, shared, nested and
// parameter tensors equals torch's own (exactly: the same bytes), contiguous ones are views of the
// file, and Real-ESRGAN's params_ema .pth loads into the upscaler with spandrel's output.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "io/weight_store.h"
#include "models/esrgan.h"
#include "test_util.h"

namespace zflow::io {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("torch_checkpoint");

std::string bytes_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  return {static_cast<const char*>(c.raw()), c.nbytes()};
}

TEST(TorchCheckpoint, EveryTensorEqualsTorchs) {
  const WeightStore store = WeightStore::open(kDir / "mixed.pt");
  const SafetensorsFile expected = SafetensorsFile::open(kDir / "mixed_expected.safetensors");
  std::vector<std::string> want;
  for (const TensorInfo& info : expected.tensors()) want.push_back(info.name);
  std::ranges::sort(want);
  EXPECT_EQ(store.names(), want);  // "state_dict." descended into; the bool mask skipped
  for (const std::string& name : want) {
    SCOPED_TRACE(name);
    const Tensor got = store.get(name), ref = expected.tensor(name);
    EXPECT_EQ(got.dtype(), ref.dtype());
    EXPECT_EQ(got.shape(), ref.shape());
    EXPECT_EQ(bytes_of(got), bytes_of(ref));
  }
  // Contiguous tensors are views of the mapped file: the two names of one storage share bytes.
  EXPECT_EQ(store.get("conv.weight").raw(), store.get("shared").raw());
}

TEST(TorchCheckpoint, RealEsrganParamsEmaLoadsAsTheSafetensors) {
  const models::Esrgan model = models::load_esrgan(kDir / "esrgan_x4_params_ema.pth");
  const SafetensorsFile io = SafetensorsFile::open(test::fixture("esrgan/esrgan_io.safetensors"));
  EXPECT_LE(test::relative_error(model.upscale(io.tensor("image").to(DType::F32)),
                                 io.tensor("x4_output").to(DType::F32)),
            1e-4);
}

// A file in a temporary folder, removed with it.
struct TempFile {
  fs::path path;
  explicit TempFile(const std::string& name, const std::string& bytes) {
    path = fs::temp_directory_path() / fmt::format("zflow_torch_{}_{}", ::getpid(), name);
    std::ofstream(path, std::ios::binary) << bytes;
  }
  ~TempFile() { fs::remove(path); }
};

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(TorchCheckpoint, MalformedFilesAreErrorsNamingThem) {
  const std::string good = file_bytes(kDir / "mixed.pt");
  const TempFile truncated("truncated.pt", good.substr(0, good.size() / 2));
  EXPECT_THAT(test::error_of([&] { WeightStore::open(truncated.path); }),
              testing::HasSubstr("[zip] " + truncated.path.string()));
  // The format before PyTorch 1.6: a bare pickle.
  const TempFile legacy("legacy.pth", std::string("\x80\x02\x8a\x0a", 4) + std::string(60, '\0'));
  EXPECT_THAT(test::error_of([&] { WeightStore::open(legacy.path); }),
              testing::HasSubstr("the format before PyTorch 1.6"));
  // An opcode torch.save never writes, in place of data.pkl's first BINPUT.
  std::string patched = good;
  const size_t pickle = patched.find(std::string("\x80\x02}q\x00", 5));
  ASSERT_NE(pickle, std::string::npos);
  patched[pickle + 3] = 'i';  // INST: protocol 0's class call
  const TempFile inst("inst.pt", patched);
  EXPECT_THAT(test::error_of([&] { WeightStore::open(inst.path); }),
              testing::HasSubstr("byte 3 of data.pkl: opcode 0x69"));
}

}  // namespace
}  // namespace zflow::io
