// Test support: a real nats-server on a free 127.0.0.1 port, and a plain cnats
// client that watches and drives the bus from a test.
#include "support/nats_server.hpp"

#include "process_control.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <nats/nats.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#ifndef KRYTEN_NATS_SERVER
#define KRYTEN_NATS_SERVER "nats-server"
#endif

namespace kryten::test {

using namespace std::chrono_literals;

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

/// True if something accepts on 127.0.0.1:port and sends a NATS INFO line
/// within `timeout`.
bool server_answers(int port, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr = loopback(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string got;
    char buf[256];
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (got.size() < 5 && std::chrono::steady_clock::now() < end) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n > 0) {
        got.append(buf, static_cast<std::size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        break;  // closed, error or SO_RCVTIMEO
      }
    }
    ok = got.rfind("INFO ", 0) == 0;
  }
  ::close(fd);
  return ok;
}

std::vector<std::string> server_argv(const nats_server::options& opts,
                                     const std::string& config_file, int port) {
  std::vector<std::string> argv{KRYTEN_NATS_SERVER};
  // A config file first: the flags after it (address, port, auth) take precedence.
  if (!config_file.empty()) argv.insert(argv.end(), {"-c", config_file});
  argv.insert(argv.end(), {"-a", "127.0.0.1", "-p", std::to_string(port)});
  if (!opts.user.empty() || !opts.password.empty()) {
    argv.insert(argv.end(), {"--user", opts.user, "--pass", opts.password});
  }
  if (!opts.token.empty()) argv.insert(argv.end(), {"--auth", opts.token});
  if (!opts.jetstream_dir.empty()) argv.insert(argv.end(), {"-js", "-sd", opts.jetstream_dir});
  return argv;
}

/// Starts nats-server on `port` and waits (10 s) until it is ready. Returns
/// nullptr if the port was taken; throws on any other failure.
std::unique_ptr<child_process> launch(const nats_server::options& opts,
                                      const std::string& config_file, int port) {
  auto proc = std::make_unique<child_process>(server_argv(opts, config_file, port));
  const auto end = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    if (!proc->running()) {
      std::string err = proc->stderr_text();
      if (err.find("address already in use") != std::string::npos) return nullptr;
      throw std::runtime_error("nats-server on port " + std::to_string(port) +
                               " exited with code " + std::to_string(*proc->wait_for_exit(0ms)) +
                               ":\n" + err + proc->stdout_text());
    }
    // "Server is ready" in our own log proves that this process (not some
    // other one that raced us to the port) is listening.
    if (proc->stderr_text().find("Server is ready") != std::string::npos &&
        server_answers(port, 1000ms)) {
      return proc;
    }
    if (std::chrono::steady_clock::now() >= end) {
      std::string err = proc->stderr_text();
      throw std::runtime_error("nats-server on port " + std::to_string(port) +
                               " not ready after 10 s:\n" + err + proc->stdout_text());
    }
    std::this_thread::sleep_for(10ms);
  }
}

/// `text` in a new file in $TMPDIR (or /tmp); returns its path.
std::string write_config_file(const std::string& text) {
  const char* dir = std::getenv("TMPDIR");
  std::string path = std::string{(dir != nullptr && *dir != '\0') ? dir : "/tmp"} +
                     "/kryten-nats-server-XXXXXX.conf";
  int fd = ::mkstemps(path.data(), 5);
  if (fd < 0) {
    throw std::runtime_error("nats-server: cannot create a config file " + path + ": " +
                             std::strerror(errno));
  }
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(path.c_str());
      throw std::runtime_error("nats-server: cannot write " + path + ": " + err);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::close(fd);
  return path;
}

std::string nats_error(const std::string& what, natsStatus s) {
  std::string msg = what + ": " + natsStatus_GetText(s);
  const char* last = nats_GetLastError(nullptr);
  if (last != nullptr && *last != '\0') msg += std::string(" (") + last + ")";
  return msg;
}

}  // namespace

int free_port() {
  return kryten::process::free_loopback_port();
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
                std::chrono::milliseconds poll) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (condition()) return true;
    auto now = std::chrono::steady_clock::now();
    if (now >= end) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(poll, end - now));
  }
}

// ---------------------------------------------------------------------------
// nats_server

nats_server::nats_server() : nats_server(options{}) {}

nats_server::nats_server(options opts) : opts_(std::move(opts)), port_(0) {
  if (!opts_.config.empty()) config_file_ = write_config_file(opts_.config);
  try {
    constexpr int attempts = 4;  // first try + 3 retries if the port was raced away
    for (int i = 0; i < attempts; ++i) {
      port_ = free_port();
      proc_ = launch(opts_, config_file_, port_);
      if (proc_) return;
    }
    throw std::runtime_error("nats-server: ports kept being taken, gave up after " +
                             std::to_string(attempts) + " attempts");
  } catch (...) {
    if (!config_file_.empty()) ::unlink(config_file_.c_str());  // no destructor runs
    throw;
  }
}

nats_server::~nats_server() {
  try {
    stop();
  } catch (...) {
  }
  if (!config_file_.empty()) ::unlink(config_file_.c_str());
}

std::string nats_server::url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

void nats_server::stop() {
  if (!proc_ || !proc_->running()) return;
  proc_->signal(SIGTERM);
  if (!proc_->wait_for_exit(5s)) {
    proc_->signal(SIGKILL);
    proc_->wait_for_exit(5s);
  }
}

void nats_server::kill() {
  if (!proc_ || !proc_->running()) return;
  proc_->signal(SIGKILL);
  proc_->wait_for_exit(5s);
}

void nats_server::start() {
  if (running()) return;
  // The port should be free again at once (nats-server listens with
  // SO_REUSEADDR), but retry briefly in case something holds it.
  const auto end = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    proc_ = launch(opts_, config_file_, port_);
    if (proc_) return;
    if (std::chrono::steady_clock::now() >= end) {
      throw std::runtime_error("nats-server: port " + std::to_string(port_) +
                               " still in use, cannot restart");
    }
    std::this_thread::sleep_for(100ms);
  }
}

bool nats_server::running() const { return proc_ && proc_->running(); }

// ---------------------------------------------------------------------------
// nats_cluster

nats_cluster::nats_cluster(std::size_t nodes, bool advertise) {
  std::vector<int> route_ports;
  for (std::size_t i = 0; i < nodes; ++i) route_ports.push_back(free_port());
  for (std::size_t i = 0; i < nodes; ++i) {
    std::string routes;
    for (std::size_t j = 0; j < nodes; ++j)
      if (j != i)
        routes += (routes.empty() ? "" : ", ") + std::string{"nats-route://127.0.0.1:"} +
                  std::to_string(route_ports[j]);
    nats_server::options opts;
    opts.config = "server_name: node" + std::to_string(i) +
                  "\ncluster {\n  name: kryten-test\n  listen: 127.0.0.1:" +
                  std::to_string(route_ports[i]) + "\n  routes: [" + routes + "]\n" +
                  (advertise ? "" : "  no_advertise: true\n") + "}\n";
    nodes_.push_back(std::make_unique<nats_server>(std::move(opts)));
  }
  if (!wait_formed(10s)) throw std::runtime_error("nats cluster: routes not up after 10 s");
}

std::vector<std::string> nats_cluster::urls() const {
  std::vector<std::string> out;
  for (auto& n : nodes_) out.push_back(n->url());
  return out;
}

bool nats_cluster::wait_formed(std::chrono::milliseconds deadline) const {
  // Formed when a message published on any running node reaches a
  // subscriber on every other running node.
  const auto end = std::chrono::steady_clock::now() + deadline;
  std::vector<std::unique_ptr<bus_client>> clients;
  for (auto& n : nodes_)
    if (n->running()) clients.push_back(std::make_unique<bus_client>(n->url()));
  const std::string subject = "kryten.test.cluster.formed";
  for (auto& c : clients) c->subscribe(subject);
  for (std::size_t from = 0; from < clients.size(); ++from) {
    auto everyone_has_it = [&] {
      for (std::size_t to = 0; to < clients.size(); ++to)
        if (to != from && clients[to]->messages_on(subject).empty()) return false;
      return true;
    };
    for (;;) {
      for (auto& c : clients) c->clear();
      clients[from]->publish(subject, "hello");
      clients[from]->flush();
      if (wait_until(everyone_has_it, 100ms)) break;
      if (std::chrono::steady_clock::now() >= end) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// bus_client

namespace {

struct bus_state {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<bus_message> msgs;
  std::size_t completed = 0;  // subscriptions whose handler will not run again
};

// One per subscription, owned by cnats until its completion callback runs,
// so a late message callback never sees a destroyed client.
struct sub_closure {
  std::shared_ptr<bus_state> state;
};

void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* c = static_cast<sub_closure*>(closure);
  bus_message m;
  m.subject = natsMsg_GetSubject(msg);
  const char* data = natsMsg_GetData(msg);
  int len = natsMsg_GetDataLength(msg);
  if (data != nullptr && len > 0) m.data.assign(data, static_cast<std::size_t>(len));
  const char* reply = natsMsg_GetReply(msg);
  if (reply != nullptr) m.reply = reply;
  natsMsg_Destroy(msg);
  {
    std::lock_guard<std::mutex> lock(c->state->mu);
    c->state->msgs.push_back(std::move(m));
  }
  c->state->cv.notify_all();
}

void on_complete(void* closure) {
  auto* c = static_cast<sub_closure*>(closure);
  {
    std::lock_guard<std::mutex> lock(c->state->mu);
    ++c->state->completed;
  }
  c->state->cv.notify_all();
  delete c;
}

}  // namespace

struct bus_client::impl {
  natsConnection* conn = nullptr;
  std::vector<natsSubscription*> subs;
  std::shared_ptr<bus_state> state = std::make_shared<bus_state>();
};

bus_client::bus_client(const std::string& url, const std::string& user,
                       const std::string& password, const std::string& token)
    : impl_(std::make_unique<impl>()) {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  // A comma-separated list is a server pool, tried in order.
  std::vector<std::string> urls;
  for (std::size_t from = 0, comma; from <= url.size(); from = comma + 1) {
    comma = std::min(url.find(',', from), url.size());
    urls.push_back(url.substr(from, comma - from));
  }
  std::vector<const char*> servers;
  for (auto& u : urls) servers.push_back(u.c_str());
  if (s == NATS_OK)
    s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
  if (s == NATS_OK) s = natsOptions_SetNoRandomize(opts, true);
  if (s == NATS_OK && (!user.empty() || !password.empty())) {
    s = natsOptions_SetUserInfo(opts, user.c_str(), password.c_str());
  }
  if (s == NATS_OK && !token.empty()) s = natsOptions_SetToken(opts, token.c_str());
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, true);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 100);
  if (s == NATS_OK) s = natsOptions_SetReconnectJitter(opts, 0, 0);
  if (s == NATS_OK) s = natsConnection_Connect(&impl_->conn, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    if (impl_->conn != nullptr) natsConnection_Destroy(impl_->conn);
    impl_->conn = nullptr;
    throw std::runtime_error(nats_error("bus_client: cannot connect to " + url, s));
  }
}

bus_client::~bus_client() {
  for (auto* sub : impl_->subs) natsSubscription_Unsubscribe(sub);
  natsConnection_Close(impl_->conn);
  {
    // Let the message handlers finish before the subscriptions go away.
    std::unique_lock<std::mutex> lock(impl_->state->mu);
    impl_->state->cv.wait_for(lock, 2s,
                              [&] { return impl_->state->completed >= impl_->subs.size(); });
  }
  for (auto* sub : impl_->subs) natsSubscription_Destroy(sub);
  natsConnection_Destroy(impl_->conn);
}

void bus_client::subscribe(const std::string& subject) {
  auto* closure = new sub_closure{impl_->state};
  natsSubscription* sub = nullptr;
  natsStatus s = natsConnection_Subscribe(&sub, impl_->conn, subject.c_str(), on_message, closure);
  if (s != NATS_OK) {
    delete closure;
    throw std::runtime_error(nats_error("bus_client: subscribe " + subject, s));
  }
  impl_->subs.push_back(sub);
  if (natsSubscription_SetOnCompleteCB(sub, on_complete, closure) != NATS_OK) {
    // Cannot know when cnats is done with it: leak the closure rather than risk
    // a use after free. Count it as complete so the destructor does not wait.
    std::lock_guard<std::mutex> lock(impl_->state->mu);
    ++impl_->state->completed;
  }
  s = natsSubscription_SetPendingLimits(sub, -1, -1);
  if (s != NATS_OK) throw std::runtime_error(nats_error("bus_client: pending limits", s));
  flush();
}

void bus_client::publish(const std::string& subject, const std::string& data) {
  natsStatus s = natsConnection_Publish(impl_->conn, subject.c_str(), data.data(),
                                        static_cast<int>(data.size()));
  if (s != NATS_OK) throw std::runtime_error(nats_error("bus_client: publish " + subject, s));
}

void bus_client::flush() {
  natsStatus s = natsConnection_FlushTimeout(impl_->conn, 5000);
  if (s != NATS_OK) throw std::runtime_error(nats_error("bus_client: flush", s));
}

std::optional<std::string> bus_client::request(const std::string& subject,
                                               const std::string& data,
                                               std::chrono::milliseconds timeout) {
  natsMsg* reply = nullptr;
  natsStatus s = natsConnection_Request(&reply, impl_->conn, subject.c_str(), data.data(),
                                        static_cast<int>(data.size()),
                                        static_cast<int64_t>(timeout.count()));
  if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS) return std::nullopt;
  if (s != NATS_OK) throw std::runtime_error(nats_error("bus_client: request " + subject, s));
  std::string out;
  const char* d = natsMsg_GetData(reply);
  int len = natsMsg_GetDataLength(reply);
  if (d != nullptr && len > 0) out.assign(d, static_cast<std::size_t>(len));
  natsMsg_Destroy(reply);
  return out;
}

std::vector<bus_message> bus_client::messages() const {
  std::lock_guard<std::mutex> lock(impl_->state->mu);
  return impl_->state->msgs;
}

std::vector<bus_message> bus_client::messages_on(const std::string& subject) const {
  std::lock_guard<std::mutex> lock(impl_->state->mu);
  std::vector<bus_message> out;
  for (const auto& m : impl_->state->msgs) {
    if (m.subject == subject) out.push_back(m);
  }
  return out;
}

std::optional<bus_message> bus_client::wait_for(const std::string& subject,
                                                std::chrono::milliseconds deadline,
                                                std::size_t n) {
  if (n == 0) n = 1;
  auto& st = *impl_->state;
  std::optional<bus_message> found;
  auto nth = [&] {
    std::size_t seen = 0;
    for (const auto& m : st.msgs) {
      if (m.subject == subject && ++seen == n) {
        found = m;
        return true;
      }
    }
    return false;
  };
  std::unique_lock<std::mutex> lock(st.mu);
  st.cv.wait_for(lock, deadline, nth);
  return found;
}

void bus_client::clear() {
  std::lock_guard<std::mutex> lock(impl_->state->mu);
  impl_->state->msgs.clear();
}

bool bus_client::connected() const {
  return natsConnection_Status(impl_->conn) == NATS_CONN_STATUS_CONNECTED;
}

bool bus_client::wait_connected(std::chrono::milliseconds deadline) const {
  // Connected, then a PING/PONG round trip: the server has processed the
  // re-sent subscriptions on return.
  return wait_until(
      [this] {
        return connected() && natsConnection_FlushTimeout(impl_->conn, 1000) == NATS_OK;
      },
      deadline, std::chrono::milliseconds(10));
}

}  // namespace kryten::test
