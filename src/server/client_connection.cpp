#include "server/client_connection.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <filesystem>
#include <string>

namespace zflow::server {
namespace {

// "address:port" of a socket address, numeric as httplib writes Request::remote_addr.
std::string endpoint(const sockaddr_storage& addr, socklen_t len) {
  char host[NI_MAXHOST], port[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof host, port,
                  sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return {};
  return std::string(host) + ":" + port;
}

bool has_endpoints(int fd, const std::string& local, const std::string& remote) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      endpoint(addr, len) != remote)
    return false;
  len = sizeof addr;
  return getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
         endpoint(addr, len) == local;
}

}  // namespace

ClientConnection::ClientConnection(const httplib::Request& request) {
  const std::string local = request.local_addr + ":" + std::to_string(request.local_port);
  const std::string remote = request.remote_addr + ":" + std::to_string(request.remote_port);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const std::string name = entry.path().filename().string();
    int fd = -1;
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc{}) continue;
    if (has_endpoints(fd, local, remote)) {
      fd_ = fd;
      return;
    }
  }
}

bool ClientConnection::still_connected() const {
  if (fd_ < 0) return true;
  char byte;
  const ssize_t n = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return true;  // more data (a pipelined request): still there
  if (n == 0) return false;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

}  // namespace zflow::server
