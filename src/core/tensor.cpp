#include "core/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>

#include "core/device_memory.h"
#include "core/error.h"
#include "core/hadamard.h"
#include "core/host_memory.h"
#include "core/thread_pool.h"

namespace zflow {

std::string_view device_name(Device d) {
  return d == Device::CPU ? "cpu" : "cuda";
}

std::string shape_str(std::span<const int64_t> shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

int64_t shape_numel(std::span<const int64_t> shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

std::vector<int64_t> contiguous_strides(std::span<const int64_t> shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

std::shared_ptr<Storage> Storage::allocate_host(size_t bytes) {
  void* p = host_memory::allocate(bytes);
  ZF_CHECK(p != nullptr, "[tensor] out of host memory allocating {} bytes", bytes);
  auto s = std::make_shared<Storage>();
  s->owner = std::shared_ptr<void>(p, [bytes](void* data) { host_memory::release(data, bytes); });
  s->data = p;
  s->bytes = bytes;
  return s;
}

std::shared_ptr<Storage> Storage::borrow(void* data, size_t bytes, std::shared_ptr<void> owner,
                                         Device device) {
  auto s = std::make_shared<Storage>();
  s->owner = std::move(owner);
  s->data = data;
  s->bytes = bytes;
  s->device = device;
  return s;
}

Tensor Tensor::over(std::shared_ptr<Storage> storage, size_t offset, Shape shape, DType dtype) {
  for (int64_t d : shape)
    ZF_CHECK(d >= 0, "[tensor] negative dimension in shape {}", shape_str(shape));
  Tensor t;
  t.storage_ = std::move(storage);
  t.offset_ = offset;
  t.strides_ = contiguous_strides(shape);
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  // Block-quantised rows are whole blocks, so any row (and any run of rows) has a byte size.
  ZF_CHECK(!dtype_is_quantized(dtype) ||
               (!t.shape_.empty() && t.shape_.back() % dtype_block_size(dtype) == 0),
           "[tensor] a {} tensor's innermost dim must be a multiple of {}, got shape {}",
           dtype_name(dtype), dtype_block_size(dtype), shape_str(t.shape_));
  ZF_CHECK(offset + t.nbytes() <= t.storage_->bytes,
           "[tensor] a {} {} tensor at byte {} does not fit in storage of {} bytes",
           dtype_name(dtype), shape_str(t.shape_), offset, t.storage_->bytes);
  return t;
}

Tensor Tensor::empty(Shape shape, DType dtype, Device device) {
  for (int64_t d : shape)
    ZF_CHECK(d >= 0, "[tensor] negative dimension in shape {}", shape_str(shape));
  const size_t bytes = dtype_nbytes(dtype, shape_numel(shape));
  auto storage = device == Device::CPU ? Storage::allocate_host(bytes)
                                       : device_memory::allocate(device, bytes);
  return over(std::move(storage), 0, std::move(shape), dtype);
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  Tensor t = empty(std::move(shape), dtype, device);
  if (device == Device::CPU) {
    std::memset(t.raw(), 0, t.nbytes());
  } else if (t.nbytes() > 0) {
    device_memory::zero(t.raw(), t.nbytes());
  }
  return t;
}

Tensor Tensor::from_f32(Shape shape, std::span<const float> values) {
  ZF_CHECK(shape_numel(shape) == static_cast<int64_t>(values.size()),
           "[tensor] {} values do not fill shape {}", values.size(), shape_str(shape));
  Tensor t = empty(std::move(shape), DType::F32);
  std::memcpy(t.raw(), values.data(), values.size_bytes());
  return t;
}

int Tensor::normalize_dim(int dim, int rank) const {
  const int d = dim < 0 ? dim + rank : dim;
  ZF_CHECK(d >= 0 && d < rank, "[tensor] dim {} out of range for a tensor of shape {}", dim,
           shape_str(shape_));
  return d;
}

int64_t Tensor::size(int dim) const {
  return shape_[normalize_dim(dim, ndim())];
}

void Tensor::check_dtype(DType expected) const {
  ZF_CHECK(dtype_ == expected, "[tensor] expected a {} tensor, got {} {}", dtype_name(expected),
           dtype_name(dtype_), shape_str(shape_));
}

Tensor Tensor::with_scale(float scale) const {
  ZF_CHECK(dtype_is_float8(dtype_) || scale == 1.0f,
           "[tensor] only float8 tensors carry a scale, got {} {} with scale {}",
           dtype_name(dtype_), shape_str(shape_), scale);
  ZF_CHECK(std::isfinite(scale), "[tensor] scale {} of a {} {} tensor is not finite", scale,
           dtype_name(dtype_), shape_str(shape_));
  Tensor t = *this;
  t.scale_ = scale;
  return t;
}

std::span<const float> Tensor::row_scales() const {
  if (!row_scales_) return {};
  return std::span(row_scales_->values)
      .subspan(static_cast<size_t>(first_row_), static_cast<size_t>(shape_[0]));
}

int64_t Tensor::hadamard_group() const {
  return row_scales_ ? row_scales_->hadamard_group : 0;
}

Tensor Tensor::with_row_scales(std::vector<float> scales, int64_t hadamard_group) const {
  ZF_CHECK(dtype_ == DType::I8 && ndim() == 2 && strides_.back() == 1,
           "[tensor] only 2-D I8 tensors with contiguous rows carry row scales, got {} {}",
           dtype_name(dtype_), shape_str(shape_));
  ZF_CHECK(static_cast<int64_t>(scales.size()) == shape_[0],
           "[tensor] {} row scales for an I8 tensor of shape {}", scales.size(), shape_str(shape_));
  ZF_CHECK(
      hadamard_group == 0 || (is_hadamard_group(hadamard_group) && shape_[1] % hadamard_group == 0),
      "[tensor] a ConvRot group of {} does not divide rows of {} values (expected a power "
      "of four dividing them)",
      hadamard_group, shape_[1]);
  Tensor t = *this;
  t.row_scales_ = std::make_shared<const RowScales>(RowScales{std::move(scales), hadamard_group});
  t.first_row_ = 0;
  return t;
}

void Tensor::check_no_row_scales(const char* what) const {
  ZF_CHECK(!row_scales_,
           "[tensor] {} of an int8 weight with row scales {} (only its rows can be sliced)", what,
           shape_str(shape_));
}

bool Tensor::same_row_scales(const Tensor& other) const {
  return row_scales_ == other.row_scales_ && (!row_scales_ || first_row_ == other.first_row_);
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

Tensor Tensor::view(Shape shape) const {
  check_no_row_scales("a view");
  ZF_CHECK(is_contiguous(), "[view] tensor of shape {} is not contiguous", shape_str(shape_));
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      ZF_CHECK(infer < 0, "[view] more than one -1 in {}", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0 && known > 0) shape[infer] = numel() / known;
  ZF_CHECK(shape_numel(shape) == numel(), "[view] cannot view {} as {}", shape_str(shape_),
           shape_str(shape));
  Tensor t = *this;
  t.strides_ = contiguous_strides(shape);
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::slice(int dim, int64_t start, int64_t end) const {
  const int d = normalize_dim(dim, ndim());
  ZF_CHECK(0 <= start && start <= end && end <= shape_[d],
           "[slice] range [{}, {}) out of bounds for dim {} of {}", start, end, dim,
           shape_str(shape_));
  Tensor t = *this;
  if (dtype_is_quantized(dtype_) && d == ndim() - 1)
    ZF_CHECK(strides_[d] == 1 && start % dtype_block_size(dtype_) == 0 &&
                 end % dtype_block_size(dtype_) == 0,
             "[slice] {} of a {} tensor {} along its blocks must keep whole blocks of {}",
             fmt::format("[{}, {})", start, end), dtype_name(dtype_), shape_str(shape_),
             dtype_block_size(dtype_));
  if (d == 0) {
    t.first_row_ += start;
  } else {
    check_no_row_scales("a slice across the rows");
  }
  t.offset_ += dtype_nbytes(dtype_, start * strides_[d]);
  t.shape_[d] = end - start;
  return t;
}

Tensor Tensor::select(int dim, int64_t index) const {
  check_no_row_scales("a selection");
  const int d = normalize_dim(dim, ndim());
  Tensor t = slice(d, index, index + 1);
  t.shape_.erase(t.shape_.begin() + d);
  t.strides_.erase(t.strides_.begin() + d);
  return t;
}

Tensor Tensor::permute(const std::vector<int>& order) const {
  ZF_CHECK(static_cast<int>(order.size()) == ndim(), "[permute] order has {} dims, tensor {}",
           order.size(), shape_str(shape_));
  check_no_row_scales("a permutation");
  Tensor t = *this;
  std::vector<bool> seen(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const int d = normalize_dim(order[i], ndim());
    ZF_CHECK(!seen[d], "[permute] dim {} repeated", d);
    seen[d] = true;
    t.shape_[i] = shape_[d];
    t.strides_[i] = strides_[d];
  }
  return t;
}

Tensor Tensor::unsqueeze(int dim) const {
  check_no_row_scales("an unsqueeze");
  const int d = normalize_dim(dim, ndim() + 1);
  Tensor t = *this;
  const int64_t stride = d < ndim() ? strides_[d] * shape_[d] : 1;
  t.shape_.insert(t.shape_.begin() + d, 1);
  t.strides_.insert(t.strides_.begin() + d, stride);
  return t;
}

namespace {

// Visits every element of a strided tensor in row-major order, calling fn(byte offset of
// the element relative to the tensor's first element, linear index) for each run of the
// innermost dimension.
template <typename Fn>
void for_each_row(const Shape& shape, const std::vector<int64_t>& strides, size_t elem, Fn fn) {
  const int rank = static_cast<int>(shape.size());
  if (rank == 0) {
    fn(int64_t{0}, int64_t{0}, int64_t{1}, int64_t{1});
    return;
  }
  const int64_t inner = shape[rank - 1];
  const int64_t rows = inner == 0 ? 0 : shape_numel(shape) / inner;
  std::vector<int64_t> idx(rank, 0);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off = 0;
    for (int i = 0; i < rank - 1; ++i) off += idx[i] * strides[i];
    fn(off * static_cast<int64_t>(elem), r * inner, inner, strides[rank - 1]);
    for (int i = rank - 2; i >= 0; --i) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
}

}  // namespace

void Tensor::copy_from(const Tensor& src) {
  ZF_CHECK(src.shape_ == shape_, "[copy] shape {} into {}", shape_str(src.shape_),
           shape_str(shape_));
  ZF_CHECK(is_contiguous(), "[copy] destination must be contiguous");
  // Scaled float8 values are stored * scale: they copy as bytes into a tensor with the same
  // dtype and scale, or convert (scale applied) into an unscaled one. Quantising into a
  // scale is not a copy (io/fp8_weights.h does it).
  ZF_CHECK(scale_ == 1.0f || (dtype_ == src.dtype_ && scale_ == src.scale_),
           "[copy] cannot copy {} (scale {}) into a {} tensor with scale {}",
           dtype_name(src.dtype_), src.scale_, dtype_name(dtype_), scale_);
  // Int8 rows with scales copy as bytes into a tensor holding the same scales, or dequantise
  // into one without; quantising into row scales is not a copy (io/int8_weights.h does it).
  ZF_CHECK(!row_scales_ || same_row_scales(src),
           "[copy] cannot copy {} {} into an int8 tensor with other row scales",
           dtype_name(src.dtype_), shape_str(src.shape_));
  if (numel() == 0) return;
  const Device dst_device = device(), src_device = src.device();
  if (src.row_scales_ && !row_scales_) {
    ZF_CHECK(src_device == Device::CPU && dtype_is_float(dtype_),
             "[copy] an int8 tensor with row scales dequantises on the host, into a float dtype "
             "(asked: {} on {})",
             dtype_name(dtype_), device_name(dst_device));
    if (dst_device == Device::CPU) {
      dequantize_rows_on_host(src);
    } else {
      Tensor staged = empty(shape_, dtype_);
      staged.dequantize_rows_on_host(src);
      device_memory::copy(raw(), dst_device, staged.raw(), Device::CPU, nbytes());
    }
  } else if (dst_device == Device::CPU && src_device == Device::CPU) {
    copy_on_host(src);
  } else if (dst_device == src_device) {
    ZF_CHECK(src.scale_ == scale_,
             "[copy] a scaled {} tensor converts on the host only (download it first)",
             dtype_name(src.dtype_));
    device_memory::copy_strided(*this, src);
  } else if (src_device == Device::CPU) {
    // Upload: strides, dtype and scale are settled on the host, then the bytes move as they
    // are.
    Tensor staged = src;
    if (src.dtype_ != dtype_ || src.scale_ != scale_) {
      staged = empty(shape_, dtype_);
      staged.copy_on_host(src);
    }
    staged = staged.contiguous();
    device_memory::copy(raw(), dst_device, staged.raw(), src_device, nbytes());
  } else {
    // Download: the bytes move in the source's dtype, then convert on the host.
    const Tensor packed = src.contiguous();
    if (packed.dtype_ == dtype_ && packed.scale_ == scale_) {
      device_memory::copy(raw(), dst_device, packed.raw(), src_device, nbytes());
    } else {
      Tensor host = empty(shape_, packed.dtype_).with_scale(packed.scale_);
      device_memory::copy(host.raw(), Device::CPU, packed.raw(), src_device, host.nbytes());
      copy_on_host(host);
    }
  }
}

void Tensor::dequantize_rows_on_host(const Tensor& src) {
  // Each row: widened to float32, times its scale, rotated out of ConvRot's basis, then into
  // this tensor's dtype (comfy-kitchen's dequantize_int8_convrot_weight: q.float() * scale,
  // then the rotation, in float32).
  const std::span<const float> scales = src.row_scales();
  const int64_t rows = src.shape_[0], cols = src.shape_[1], group = src.hadamard_group();
  // Checked here: nothing may throw on the pool's threads.
  ZF_CHECK(cols % dtype_block_size(dtype_) == 0,
           "[copy] rows of {} values do not fill whole {} blocks", cols, dtype_name(dtype_));
  char* dst = static_cast<char*>(raw());
  parallel_for(rows, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = begin; r < end; ++r) {
      const auto* q = static_cast<const int8_t*>(src.raw()) + r * src.strides_[0];
      for (int64_t c = 0; c < cols; ++c) row[c] = static_cast<float>(q[c]) * scales[r];
      if (group > 0) rotate_hadamard_groups(row.data(), cols, group);
      zflow::from_f32(row.data(), dst + dtype_nbytes(dtype_, r * cols), dtype_,
                      static_cast<size_t>(cols));
    }
  });
}

void Tensor::copy_on_host(const Tensor& src) {
  char* dst = static_cast<char*>(raw());
  const char* base = static_cast<const char*>(src.raw());
  if (src.scale_ != scale_) {
    // A scaled float8 source into an unscaled tensor (copy_from allows no other case): each
    // row through float32, times the scale, then into the destination dtype.
    ZF_CHECK(src.ndim() > 0, "[copy] a scaled {} scalar", dtype_name(src.dtype_));
    const size_t se = dtype_size(src.dtype_);
    std::vector<float> row(static_cast<size_t>(src.shape_.back()));
    for_each_row(src.shape_, src.strides_, se,
                 [&](int64_t off, int64_t linear, int64_t n, int64_t step) {
                   for (int64_t i = 0; i < n; ++i)
                     to_f32(base + off + i * step * static_cast<int64_t>(se), src.dtype_,
                            &row[static_cast<size_t>(i)], 1);
                   for (float& v : row) v *= src.scale_;
                   zflow::from_f32(row.data(), dst + dtype_nbytes(dtype_, linear), dtype_,
                                   static_cast<size_t>(n));
                 });
    return;
  }
  if (dtype_is_quantized(src.dtype_) || dtype_is_quantized(dtype_)) {
    // Block types convert whole rows: the innermost dim must be contiguous in the source.
    ZF_CHECK(src.ndim() > 0 && src.strides_.back() == 1,
             "[copy] a {} tensor {} must be contiguous along its innermost dim",
             dtype_name(src.dtype_), shape_str(src.shape_));
    if (src.is_contiguous()) {  // one call, which convert shares between threads
      convert(base, src.dtype_, dst, dtype_, static_cast<size_t>(numel()));
      return;
    }
    for_each_row(src.shape_, src.strides_, 1, [&](int64_t off, int64_t linear, int64_t n, int64_t) {
      convert(base + dtype_nbytes(src.dtype_, off), src.dtype_, dst + dtype_nbytes(dtype_, linear),
              dtype_, static_cast<size_t>(n));
    });
    return;
  }
  const size_t se = dtype_size(src.dtype_);
  const size_t de = dtype_size(dtype_);
  for_each_row(
      src.shape_, src.strides_, se, [&](int64_t off, int64_t linear, int64_t n, int64_t step) {
        if (step == 1) {
          convert(base + off, src.dtype_, dst + linear * de, dtype_, static_cast<size_t>(n));
        } else {
          for (int64_t i = 0; i < n; ++i)
            convert(base + off + i * step * static_cast<int64_t>(se), src.dtype_,
                    dst + (linear + i) * static_cast<int64_t>(de), dtype_, 1);
        }
      });
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device()).with_scale(scale_);
  t.row_scales_ = row_scales_;
  t.first_row_ = first_row_;
  t.copy_from(*this);
  return t;
}

Tensor Tensor::contiguous() const {
  return is_contiguous() ? *this : clone();
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor t = empty(shape_, dtype, device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor t = empty(shape_, dtype_, device).with_scale(scale_);
  t.row_scales_ = row_scales_;
  t.first_row_ = first_row_;
  t.copy_from(*this);
  return t;
}

std::vector<float> Tensor::to_f32_vector() const {
  const Tensor t = to(Device::CPU).to(DType::F32).contiguous();
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

}  // namespace zflow
