#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace zflow::io {

namespace {

int madvice_for(AccessPattern access) {
  switch (access) {
    case AccessPattern::Sequential:
      return MADV_SEQUENTIAL;
    case AccessPattern::Random:
      return MADV_RANDOM;
    case AccessPattern::Normal:
      break;
  }
  return MADV_NORMAL;
}

// Closes the descriptor on every path out of open(); the mapping outlives it.
struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::filesystem::path& path,
                                             AccessPattern access) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("[mmap] {}: cannot open: {}", path.string(), std::strerror(errno));
  FdCloser closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0)
    fail("[mmap] {}: cannot stat: {}", path.string(), std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("[mmap] {}: not a regular file", path.string());

  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ == 0) return file;  // mmap of length 0 is an error; nothing to map

  void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED)
    fail("[mmap] {}: cannot map {} bytes: {}", path.string(), file->size_, std::strerror(errno));
  file->data_ = static_cast<const uint8_t*>(p);
  // Advice only changes read-ahead; a failure is harmless, so it is not checked.
  ::madvise(p, file->size_, madvice_for(access));
  return file;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::prefetch(size_t offset, size_t length) const {
  if (data_ == nullptr || offset >= size_) return;
  length = std::min(length, size_ - offset);
  // madvise needs a page-aligned start.
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t start = offset / page * page;
  ::madvise(const_cast<uint8_t*>(data_) + start, length + (offset - start), MADV_WILLNEED);
}

}  // namespace zflow::io
