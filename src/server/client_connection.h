// Whether the client of an HTTP request is still there, for the synchronous APIs: a job whose
// client hung up is cancelled instead of being run to the end for nobody (a browser tab closed
// during a 30-step FLUX run would otherwise hold the GPU for the whole run).
//
// cpp-httplib 0.11 gives a handler no socket, so the request's TCP connection is found among the
// process's descriptors by its two endpoints (address and port on both sides, unique while the
// connection is open), and a close shows as end-of-stream when the socket is peeked: the client's
// FIN. A client that only shuts down its sending side counts as gone too; HTTP clients do not.
#pragma once

#include <httplib.h>

namespace zflow::server {

class ClientConnection {
 public:
  explicit ClientConnection(const httplib::Request& request);

  // False once the client has closed the connection (or it was reset). True while it is open,
  // and whenever the socket could not be found: a job is never cancelled on a doubt.
  bool still_connected() const;

 private:
  int fd_ = -1;
};

}  // namespace zflow::server
