// Tensor: a strided view (shape, strides in elements, byte offset) over shared storage.
// Storage is either owned memory or borrowed memory whose owner (a memory-mapped
// file, a device allocation) is kept alive by a shared handle, so a weight read
// from a safetensors file is a Tensor over the mapping with no copy.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace zflow {

enum class Device : uint8_t { CPU, CUDA };
std::string_view device_name(Device d);

using Shape = std::vector<int64_t>;
std::string shape_str(std::span<const int64_t> shape);  // "[2, 16, 64, 64]"
int64_t shape_numel(std::span<const int64_t> shape);

struct Storage {
  std::shared_ptr<void> owner;  // keeps `data` valid; its deleter frees or unmaps
  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::CPU;

  // 64-byte aligned host memory, uninitialised.
  static std::shared_ptr<Storage> allocate_host(size_t bytes);
  // Memory owned by someone else; `owner` keeps it alive.
  static std::shared_ptr<Storage> borrow(void* data, size_t bytes, std::shared_ptr<void> owner,
                                         Device device = Device::CPU);
};

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::F32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::F64;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::I64;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::I32;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::U8;
};

class Tensor {
 public:
  Tensor() = default;

  // A new contiguous tensor (uninitialised / zero-filled), on the host unless a device is
  // named. GPU memory comes from the CUDA backend's stream-ordered pool (backend/device.h).
  static Tensor empty(Shape shape, DType dtype, Device device = Device::CPU);
  static Tensor zeros(Shape shape, DType dtype, Device device = Device::CPU);
  // A contiguous tensor over existing storage starting at `offset` bytes.
  static Tensor over(std::shared_ptr<Storage> storage, size_t offset, Shape shape, DType dtype);
  // A float32 tensor holding a copy of `values`.
  static Tensor from_f32(Shape shape, std::span<const float> values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t size(int dim) const;  // negative dims count from the end
  int64_t numel() const { return shape_numel(shape_); }
  // Bytes of numel() elements (whole blocks for a block-quantised dtype).
  size_t nbytes() const { return dtype_nbytes(dtype_, numel()); }
  DType dtype() const { return dtype_; }
  // The per-tensor scale of a float8 weight ("scaled fp8": ComfyUI's `scale_weight` /
  // `weight_scale`): the tensor's values are its stored values times scale(). 1 for every
  // other tensor. Views and same-dtype copies (clone, to(Device)) keep it; a conversion to
  // another dtype applies it, so to(DType::F32) gives the true values.
  float scale() const { return scale_; }
  // This tensor (a view) with a scale; only float8 tensors (F8_E4M3, F8_E5M2) carry one.
  Tensor with_scale(float scale) const;
  // The per-row scales of an int8 weight (ComfyUI's int8_tensorwise, io/int8_weights.h): row
  // r's values are its stored integers times row_scales()[r], then, when hadamard_group() > 0,
  // rotated back out of ConvRot's basis (core/hadamard.h). Empty (and 0) for every other
  // tensor. Slices along dim 0 keep their rows' scales, same-dtype copies keep them, other
  // views are refused; a conversion to another dtype applies them, so to(DType::F32) gives
  // the true values.
  std::span<const float> row_scales() const;
  int64_t hadamard_group() const;
  // This 2-D I8 tensor (a view) with one scale per row and ConvRot's group (0: not rotated).
  Tensor with_row_scales(std::vector<float> scales, int64_t hadamard_group) const;
  Device device() const { return storage_ ? storage_->device : Device::CPU; }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  void* raw() const { return static_cast<char*>(storage_->data) + offset_; }
  template <typename T>
  T* data() const {
    check_dtype(DTypeOf<T>::value);
    return static_cast<T*>(raw());
  }

  // Views share storage.
  Tensor view(Shape shape) const;  // contiguous only; one dim may be -1
  Tensor slice(int dim, int64_t start, int64_t end) const;
  Tensor select(int dim, int64_t index) const;  // drops `dim`
  Tensor permute(const std::vector<int>& order) const;
  Tensor unsqueeze(int dim) const;

  // Copies, on the tensor's own device. On the GPU, dtype conversions are between F32, BF16
  // and F16 (other dtypes copy only to their own dtype).
  Tensor contiguous() const;  // this tensor if already contiguous
  Tensor clone() const;
  Tensor to(DType dtype) const;  // converted copy (this tensor if the dtype already matches)
  // A contiguous copy on `device` (this tensor if already there): an upload or a download.
  // GPU work is queued on the device's stream; a download waits for it.
  Tensor to(Device device) const;
  void copy_from(const Tensor& src);         // same shape; converts dtype; any devices
  std::vector<float> to_f32_vector() const;  // downloads a GPU tensor first

 private:
  int normalize_dim(int dim, int rank) const;
  void copy_on_host(const Tensor& src);  // both on the host, same shape, dst contiguous
  void check_dtype(DType expected) const;
  void check_no_row_scales(const char* what) const;
  bool same_row_scales(const Tensor& other) const;
  void dequantize_rows_on_host(const Tensor& src);  // src has row scales, this does not

  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  std::vector<int64_t> strides_;  // elements
  DType dtype_ = DType::F32;
  float scale_ = 1.0f;
  struct RowScales {
    std::vector<float> values;  // one per row of the tensor they were given to
    int64_t hadamard_group = 0;
  };
  std::shared_ptr<const RowScales> row_scales_;
  int64_t first_row_ = 0;  // this view's first row in row_scales_->values
};

std::vector<int64_t> contiguous_strides(std::span<const int64_t> shape);

}  // namespace zflow
