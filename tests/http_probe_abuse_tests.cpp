// The HTTP probe against clients that try to silence it: hundreds of slow
// connections trickling their request heads, floods of requests, connections
// that send nothing, oversized heads, a full connection table. Real sockets
// on 127.0.0.1 against a real http_server with simple callbacks, and once
// through a kryten::client against a real nats-server.
//
// Every wait is bounded: the raw client below reads with poll() up to a
// deadline, conditions are awaited with wait_until. The trickling thread
// paces itself on a condition variable (its interval is the point).
#include <catch2/catch.hpp>

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "actors/http_server.hpp"
#include "kryten/client.hpp"
#include "support/bot_fixtures.hpp"
#include "support/nats_server.hpp"

using namespace std::chrono_literals;
using kryten::detail::http_server;
using kryten::detail::probe_callbacks;
using kryten::detail::probe_limits;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// Sanitizer builds run several times slower, so they get more room.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
constexpr milliseconds answer_limit = sanitized ? 1500ms : 1000ms;
constexpr milliseconds slack = sanitized ? 700ms : 300ms;  // on top of a server deadline

milliseconds since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

// -- a raw HTTP client ----------------------------------------------------------------

/// A connected loopback socket (blocking), or -1.
int connect_to(int port, milliseconds limit = 2s) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      ::close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, static_cast<int>(limit.count())) != 1
        || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

bool send_all(int fd, std::string_view bytes, milliseconds limit = 2s) {
  auto until = steady_clock::now() + limit;
  while (!bytes.empty()) {
    auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return false;
    auto left = std::chrono::duration_cast<milliseconds>(until - steady_clock::now());
    if (left <= 0ms)
      return false;
    pollfd p{fd, POLLOUT, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
  }
  return true;
}

struct raw_reply {
  bool connected = false;
  std::string error;     // why it did not connect
  int status = 0;        // 0: no status line
  std::string text;      // all that came back
  bool closed = false;   // the server closed (FIN or RST) before the deadline
  milliseconds took{0};  // from before connecting to the close (or the deadline)

  std::string body() const {
    auto at = text.find("\r\n\r\n");
    return at == std::string::npos ? std::string() : text.substr(at + 4);
  }
  bool has_header(const std::string& line) const {
    return text.find("\r\n" + line + "\r\n") != std::string::npos;
  }
};

/// Reads until the server closes or `until`.
void read_to_close(int fd, raw_reply& r, steady_clock::time_point until) {
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<milliseconds>(until - steady_clock::now());
    if (left <= 0ms)
      return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      continue;
    auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      r.text.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    r.closed = true;  // 0: FIN; <0: a reset
    return;
  }
}

void parse_status(raw_reply& r) {
  if (r.text.rfind("HTTP/1.1 ", 0) == 0 && r.text.size() >= 12)
    r.status = std::atoi(r.text.substr(9, 3).c_str());
}

/// Connects, sends `request`, reads to the close; at most `limit` in all.
raw_reply http_exchange(int port, const std::string& request, milliseconds limit = 3s) {
  raw_reply r;
  auto start = steady_clock::now();
  int fd = connect_to(port, limit);
  if (fd < 0) {
    r.error = std::strerror(errno);
    r.took = since(start);
    return r;
  }
  r.connected = true;
  if (send_all(fd, request, limit))
    read_to_close(fd, r, start + limit);
  r.took = since(start);
  ::close(fd);
  parse_status(r);
  return r;
}

std::string get_request(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kube-probe/1.29\r\n\r\n";
}

// -- attackers ------------------------------------------------------------------------

/// `count` connections that each send the start of a request and then one
/// header line every `interval`, never finishing it. One the server closes
/// is opened again on the next round, as a determined client would.
class trickler {
public:
  trickler(int port, int count, milliseconds interval)
    : port_(port), interval_(interval), slots_(static_cast<std::size_t>(count)) {
    thread_ = std::thread([this] { run(); });
  }
  ~trickler() { stop(); }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
      thread_.join();
    for (auto& s : slots_)
      if (s.fd >= 0) {
        ::close(s.fd);
        s.fd = -1;
      }
  }

  int rounds() const { return rounds_; }
  int connects() const { return connects_; }
  int lines() const { return lines_; }              // header lines sent
  int closed_by_server() const { return closed_; }  // noticed closes
  int open() const { return open_; }                // believed open after the last round

private:
  struct slot {
    int fd = -1;
    bool started = false;  // the request line went out
    int lines = 0;
  };

  void run() {
    std::unique_lock<std::mutex> lk(m_);
    while (!stop_) {
      lk.unlock();
      round();
      lk.lock();
      cv_.wait_for(lk, interval_, [&] { return stop_; });
    }
  }

  void drop(slot& s) {
    ::close(s.fd);
    s = slot{};
    ++closed_;
  }

  void round() {
    int open = 0;
    for (auto& s : slots_) {
      if (s.fd < 0) {
        s.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s.fd < 0)
          continue;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port_));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0
            && errno != EINPROGRESS) {
          ::close(s.fd);
          s.fd = -1;
          continue;
        }
        ++connects_;
      } else {
        char c;
        auto n = ::recv(s.fd, &c, 1, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)) {
          drop(s);  // the server closed it (perhaps after a 408)
          continue;
        }
      }
      std::string line = s.started ? "X-Trickle-" + std::to_string(s.lines) + ": 1\r\n"
                                   : "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
      auto n = ::send(s.fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n == static_cast<long>(line.size())) {
        if (s.started) {
          ++s.lines;
          ++lines_;
        }
        s.started = true;
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) {
        drop(s);
        continue;
      }
      ++open;
    }
    open_ = open;
    ++rounds_;
  }

  int port_;
  milliseconds interval_;
  std::vector<slot> slots_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<int> rounds_{0}, connects_{0}, lines_{0}, closed_{0}, open_{0};
  std::thread thread_;
};

// -- the server under test -------------------------------------------------------------

/// Callbacks that answer at once, healthy, unless `stuck`: then they wait up
/// to their deadline (as the runtime's CAF requests time out) and answer nothing.
struct runtime_stub {
  std::mutex m;
  std::condition_variable cv;
  bool stuck = false;
  std::atomic<int> calls{0};

  void set_stuck(bool s) {
    {
      std::lock_guard<std::mutex> lk(m);
      stuck = s;
    }
    cv.notify_all();
  }
  bool wait_if_stuck(milliseconds deadline) {
    ++calls;
    std::unique_lock<std::mutex> lk(m);
    return cv.wait_for(lk, deadline, [&] { return !stuck; });
  }
};

probe_callbacks callbacks_for(const std::shared_ptr<runtime_stub>& rt) {
  probe_callbacks cb;
  cb.health = [rt](milliseconds d) -> std::optional<kryten::health_status> {
    if (!rt->wait_if_stuck(d))
      return std::nullopt;
    kryten::health_status h;
    h.service = "abuse-test";
    h.connected = true;
    h.state = "connected";
    h.ready = true;
    h.subscribed = true;
    return h;
  };
  cb.alive = [rt](milliseconds d) { return rt->wait_if_stuck(d); };
  cb.metrics = [rt](milliseconds d) -> std::optional<std::string> {
    if (!rt->wait_if_stuck(d))
      return std::nullopt;
    return std::string("abuse_test_up 1\n");
  };
  return cb;
}

struct fixture {
  std::shared_ptr<runtime_stub> rt = std::make_shared<runtime_stub>();
  std::shared_ptr<std::ostringstream> log_text = std::make_shared<std::ostringstream>();
  std::unique_ptr<http_server> server;

  explicit fixture(probe_limits limits = {}, spdlog::sink_ptr sink = nullptr) {
    if (!sink)
      sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*log_text);
    auto log = std::make_shared<spdlog::logger>("abuse-test", sink);
    server = std::make_unique<http_server>("127.0.0.1", 0, kryten::detail::probe_routes{},
                                           callbacks_for(rt), log, limits);
    server->start();
  }
  ~fixture() {
    rt->set_stuck(false);
    server->stop();
  }
  int port() const { return server->port(); }
  std::string log() const {
    // The sink is synchronised; the stream is read here after flushing it.
    server->stop();
    return log_text->str();
  }
};

// -- the process ----------------------------------------------------------------------

/// A "Key:   value kB" line of /proc/self/status, as a number.
long proc_status(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0)
      return std::strtol(line.c_str() + key.size() + 1, nullptr, 10);
  return -1;
}

/// Threads of this process whose name starts with `prefix`.
int threads_named(const std::string& prefix) {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr)
    return -1;
  while (auto* e = ::readdir(dir)) {
    if (e->d_name[0] == '.')
      continue;
    std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind(prefix, 0) == 0)
      ++n;
  }
  ::closedir(dir);
  return n;
}

}  // namespace

// -- (a) slow connections -------------------------------------------------------------

TEST_CASE("abuse: 200 trickling connections do not silence /health and /livez",
          "[http][abuse][timing]") {
  fixture f;
  trickler slow(f.port(), 200, 300ms);
  // The trickle is under way: every slot has sent its request line and the
  // server's table is full (it closes the oldest to make room).
  REQUIRE(kryten::test::wait_until([&] { return slow.rounds() >= 3; }, 5s));
  REQUIRE(slow.connects() >= 200);
  REQUIRE(slow.lines() > 0);

  milliseconds worst{0};
  for (int round = 0; round < 5; ++round) {
    for (const char* path : {"/health", "/livez"}) {
      INFO("round " << round << " " << path);
      auto r = http_exchange(f.port(), get_request(path));
      INFO(r.text);
      CHECK(r.status == 200);
      CHECK(r.closed);
      CHECK(r.took < answer_limit);
      worst = std::max(worst, r.took);
    }
    // Let the trickle go on between rounds (the next round of it is the condition).
    auto seen = slow.rounds();
    REQUIRE(kryten::test::wait_until([&] { return slow.rounds() > seen; }, 2s));
  }
  auto rounds = slow.rounds(), connects = slow.connects(), lines = slow.lines(),
       closed = slow.closed_by_server();
  slow.stop();
  WARN("under 200 trickling connections (" << rounds << " rounds, " << connects << " connects, "
                                           << lines << " header lines, " << closed
                                           << " closed by the server): slowest probe answer "
                                           << worst.count() << " ms");
  CHECK(closed > 0);  // the server did close them: by the cap or the deadline
  auto log = f.log();
  CHECK(log.find("closed the oldest one still sending its request") != std::string::npos);
}

TEST_CASE("abuse: a trickling connection is closed at its total deadline, not per read",
          "[http][abuse][timing]") {
  probe_limits limits;
  limits.request_timeout = 600ms;
  fixture f(limits);
  int fd = connect_to(f.port());
  REQUIRE(fd >= 0);
  auto start = steady_clock::now();
  REQUIRE(send_all(fd, "GET /health HTTP/1.1\r\n"));
  raw_reply r;
  // A line every 100 ms: every read is quick, the request never completes.
  for (int i = 0; i < 40 && !r.closed; ++i) {
    if (!send_all(fd, "X-Slow-" + std::to_string(i) + ": 1\r\n"))
      break;
    read_to_close(fd, r, steady_clock::now() + 100ms);
  }
  if (!r.closed)
    read_to_close(fd, r, steady_clock::now() + 2s);
  auto took = since(start);
  ::close(fd);
  parse_status(r);
  INFO("closed after " << took.count() << " ms: " << r.text);
  CHECK(r.status == 408);
  CHECK(took >= 550ms);
  CHECK(took < limits.request_timeout + slack);
}

TEST_CASE("abuse: a request that arrived while the server was held past its deadline is answered",
          "[http][abuse][timing]") {
  // The I/O thread is held in a log line (a stalled machine, seen from
  // outside) while a client's whole request arrives; it resumes past that
  // connection's deadline. What arrived in time is answered, not timed out.
  probe_limits limits;
  // Long enough that the set-up below (an exchange, a bad request) is done
  // well within it even on a loaded machine.
  limits.request_timeout = 2s;
  limits.budget = 10s;  // the request is not late for the runtime, only for the loop
  limits.deadline = 4s;
  kryten::test::latch gate;
  auto sink = std::make_shared<kryten::test::stalling_sink>("answered 400", gate.future);
  fixture f(limits, sink);
  int waiting = connect_to(f.port());
  REQUIRE(waiting >= 0);
  // Accepted once a request on another connection went through the loop.
  REQUIRE(http_exchange(f.port(), get_request("/livez")).status == 200);
  const auto accepted_by = steady_clock::now();

  int bad = connect_to(f.port());
  REQUIRE(bad >= 0);
  REQUIRE(send_all(bad, "NOT HTTP\r\n\r\n"));
  REQUIRE(kryten::test::wait_until([&] { return sink->logged("answered 400"); }, 5s));
  REQUIRE(send_all(waiting, get_request("/health")));
  std::this_thread::sleep_until(accepted_by + limits.request_timeout + 200ms);
  gate.open();

  raw_reply r;
  read_to_close(waiting, r, steady_clock::now() + 3s);
  parse_status(r);
  INFO(r.text);
  CHECK(r.status == 200);
  ::close(waiting);
  ::close(bad);
}

// -- (b) many clients -----------------------------------------------------------------

TEST_CASE("abuse: 2000 requests from 50 concurrent clients, bounded threads and memory",
          "[http][abuse][load]") {
  fixture f;
  constexpr int clients = 50, per_client = 40;
  // The I/O thread and 4 workers (named once they run).
  const int server_threads = 5;
  REQUIRE(kryten::test::wait_until([&] { return threads_named("kryten-http") == 5; }, 2s));
  // Warm up (allocator arenas, the first connections), then take the baseline.
  for (int i = 0; i < 20; ++i)
    REQUIRE(http_exchange(f.port(), get_request("/health")).status == 200);
  const long threads_before = proc_status("Threads");
  const long rss_before = proc_status("VmRSS");

  std::atomic<bool> done{false};
  std::atomic<long> max_threads{0}, max_rss{0}, max_server_threads{0};
  std::thread monitor([&] {
    while (!done) {
      max_threads = std::max<long>(max_threads, proc_status("Threads"));
      max_rss = std::max<long>(max_rss, proc_status("VmRSS"));
      max_server_threads = std::max<long>(max_server_threads, threads_named("kryten-http"));
      std::this_thread::sleep_for(10ms);  // a sampling interval, not a wait
    }
  });

  struct tally {
    int ok = 0, busy = 0, other = 0, slow_busy = 0;
    milliseconds worst{0};
    std::string first_other;
  };
  std::vector<tally> tallies(clients);
  const char* paths[] = {"/health", "/livez", "/readyz", "/metrics", "/livez?verbose"};
  auto start = steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      auto& t = tallies[c];
      for (int i = 0; i < per_client; ++i) {
        auto r = http_exchange(f.port(), get_request(paths[(c + i) % 5]));
        t.worst = std::max(t.worst, r.took);
        if (r.status == 200) {
          ++t.ok;
        } else if (r.status == 503) {
          ++t.busy;
          if (r.took > 100ms)
            ++t.slow_busy;
        } else {
          if (t.first_other.empty())
            t.first_other = std::to_string(r.status) + " after " + std::to_string(r.took.count()) +
                            " ms (" + (r.connected ? "connected" : r.error) + "): " + r.text;
          ++t.other;
        }
      }
    });
  for (auto& t : threads)
    t.join();
  auto took = since(start);
  done = true;
  monitor.join();

  tally all;
  for (auto& t : tallies) {
    all.ok += t.ok;
    all.busy += t.busy;
    all.other += t.other;
    all.slow_busy += t.slow_busy;
    all.worst = std::max(all.worst, t.worst);
    if (all.first_other.empty())
      all.first_other = t.first_other;
  }
  const long threads_after = proc_status("Threads");
  const long rss_after = proc_status("VmRSS");
  WARN("2000 requests from 50 clients in " << took.count() << " ms: " << all.ok << " x 200, "
       << all.busy << " x 503, slowest " << all.worst.count() << " ms; threads " << threads_before
       << " -> max " << max_threads.load() << " -> " << threads_after << " (server's: max "
       << max_server_threads.load() << "); RSS " << rss_before << " kB -> max " << max_rss.load()
       << " kB -> " << rss_after << " kB");
  INFO(all.first_other);
  CHECK(all.ok + all.busy == clients * per_client);  // every one answered 200 or 503
  CHECK(all.other == 0);
  CHECK(all.slow_busy == 0);        // a 503 is a fast one
  CHECK(all.worst < answer_limit);  // every request within the probe's promise
  CHECK(all.ok >= clients * per_client * 9 / 10);
  // Threads: the server's stay at 5 (no thread per connection); the process
  // grows only by the 50 clients and the monitor, and is back afterwards.
  CHECK(max_server_threads == server_threads);
  CHECK(max_threads <= threads_before + clients + 1);
  CHECK(threads_after == threads_before);
  // Memory: the clients' stacks and buffers included, the process grows by
  // less than 64 MiB (256 MiB sanitized) while they run and keeps less than
  // 16 MiB (64 MiB sanitized) of it.
  CHECK(max_rss - rss_before < (sanitized ? 256 : 64) * 1024);
  CHECK(rss_after - rss_before < (sanitized ? 64 : 16) * 1024);
}

// -- (c) silent connections -----------------------------------------------------------

TEST_CASE("abuse: a connection that sends nothing is closed at the deadline", "[http][abuse]") {
  SECTION("the default deadline, 1 s") {
    fixture f;
    auto r = http_exchange(f.port(), "", 5s);
    INFO(r.text);
    REQUIRE(r.connected);
    CHECK(r.closed);
    CHECK(r.status == 408);
    CHECK(r.took >= 950ms);
    CHECK(r.took < 1000ms + slack);
  }
  SECTION("a configured deadline") {
    probe_limits limits;
    limits.request_timeout = 300ms;
    fixture f(limits);
    auto r = http_exchange(f.port(), "", 5s);
    REQUIRE(r.connected);
    CHECK(r.closed);
    CHECK(r.status == 408);
    CHECK(r.took >= 250ms);
    CHECK(r.took < 300ms + slack);
    // A request sent in time is answered as usual.
    CHECK(http_exchange(f.port(), get_request("/health")).status == 200);
  }
}

// -- (d) oversized and malformed requests -----------------------------------------------

TEST_CASE("abuse: oversized and malformed requests are answered at once", "[http][abuse]") {
  fixture f;
  auto check_fast = [&](const std::string& request, int status) {
    auto r = http_exchange(f.port(), request, 3s);
    INFO(request.substr(0, 60) << " -> " << r.text);
    CHECK(r.status == status);
    CHECK(r.closed);
    CHECK(r.took < 500ms);
    CHECK(r.has_header("Connection: close"));
  };
  std::string pad(9000, 'a');
  check_fast("GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + pad + "\r\n\r\n", 431);
  check_fast("GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + pad, 431);  // never finished
  check_fast(std::string(20000, 'G'), 431);                            // no line at all
  std::string many = "GET /health HTTP/1.1\r\n";
  for (int i = 0; i < 150; ++i)
    many += "X-" + std::to_string(i) + ": 1\r\n";
  check_fast(many + "\r\n", 431);
  check_fast("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 413);
  check_fast("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400);  // a TLS ClientHello
  check_fast("GET /health HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400);
  check_fast("GET /health HTTP/2.0\r\n\r\n", 505);
  // A body within the limit is read (and ignored): the answer is the route's.
  check_fast("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789", 405);
  check_fast("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 200);
  // And the server still answers normally.
  check_fast(get_request("/health"), 200);
}

TEST_CASE("abuse: one request per connection, answered as HTTP/1.1 with Connection: close",
          "[http][abuse]") {
  fixture f;
  // Two pipelined requests: only the first is answered, then the server closes.
  auto r = http_exchange(f.port(), get_request("/livez") + get_request("/health"));
  CHECK(r.status == 200);
  CHECK(r.closed);
  CHECK(r.has_header("Connection: close"));
  CHECK(r.has_header("Cache-Control: no-store"));
  CHECK(r.text.find("HTTP/1.1", 1) == std::string::npos);
  // HTTP/1.0, and the absolute form of the target.
  r = http_exchange(f.port(), "GET /livez?verbose HTTP/1.0\r\n\r\n");
  CHECK(r.status == 200);
  CHECK(r.body() == "[+]ping ok\n[+]runtime ok\nlivez check passed\n");
  r = http_exchange(f.port(), "GET http://127.0.0.1/readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(r.status == 200);
  // HEAD: the length of the body GET would send, and no body.
  auto get = http_exchange(f.port(), get_request("/health"));
  auto head = http_exchange(f.port(), "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(head.status == 200);
  CHECK(head.body().empty());
  CHECK(head.has_header("Content-Length: " + std::to_string(get.body().size())));
}

// -- the connection cap -----------------------------------------------------------------

TEST_CASE("abuse: at the connection cap", "[http][abuse]") {
  SECTION("the oldest connection still sending its request makes room") {
    probe_limits limits;
    limits.max_connections = 8;
    fixture f(limits);
    std::vector<int> idle;
    for (int i = 0; i < 8; ++i) {
      idle.push_back(connect_to(f.port()));
      REQUIRE(idle.back() >= 0);
    }
    for (int i = 0; i < 3; ++i) {
      auto r = http_exchange(f.port(), get_request("/health"));
      CHECK(r.status == 200);
      CHECK(r.took < answer_limit);
    }
    // The first ones were closed for them, without an answer.
    raw_reply first;
    read_to_close(idle[0], first, steady_clock::now() + 2s);
    CHECK(first.closed);
    CHECK(first.text.empty());
    for (int fd : idle)
      ::close(fd);
  }
  SECTION("when every connection has a request in progress, a new one gets 503 at once") {
    probe_limits limits;
    limits.max_connections = 2;
    limits.threads = 2;
    // A long budget: a loaded machine must not turn the two requests held
    // in progress into "late" answers before the third one arrives.
    limits.budget = 10s;
    limits.deadline = 9s;
    limits.request_timeout = 9s;
    fixture f(limits);
    f.rt->set_stuck(true);
    std::atomic<int> answered_ok{0};
    std::vector<std::thread> waiting;
    struct joiner {
      fixture& f;
      std::vector<std::thread>& threads;
      ~joiner() {
        f.rt->set_stuck(false);
        for (auto& t : threads)
          if (t.joinable())
            t.join();
      }
    } join_on_exit{f, waiting};
    for (int i = 0; i < 2; ++i)
      waiting.emplace_back([&] {
        if (http_exchange(f.port(), get_request("/health"), 15s).status == 200)
          ++answered_ok;
      });
    // Both requests are in, with the workers (the runtime was asked twice).
    REQUIRE(kryten::test::wait_until([&] { return f.rt->calls.load() >= 2; }, 5s));
    auto r = http_exchange(f.port(), get_request("/health"));
    INFO(r.text);
    CHECK(r.status == 503);
    CHECK(r.took < 200ms);
    CHECK(r.body().find("too many connections") != std::string::npos);
    // Once the runtime answers, so do the two held requests.
    f.rt->set_stuck(false);
    for (auto& t : waiting)
      t.join();
    CHECK(answered_ok == 2);
  }
}

// -- through the runtime ----------------------------------------------------------------

TEST_CASE("abuse: a kryten::client's probe answers /health while 100 connections trickle",
          "[http][abuse][probe-integration]") {
  kryten::test::nats_server nats;
  const int port = kryten::test::free_port();
  auto cfg = kryten::test::make_config(nats.url(), "abuse-bot");
  cfg.service->health_host = "127.0.0.1";
  cfg.service->health_port = port;
  cfg.service->metrics_port = port;
  kryten::client client{cfg};
  client.connect();
  REQUIRE(kryten::test::wait_until(
    [&] { return http_exchange(port, get_request("/readyz"), 2s).status == 200; }, 5s, 20ms));

  trickler slow(port, 100, 300ms);
  REQUIRE(kryten::test::wait_until([&] { return slow.rounds() >= 3; }, 5s));
  for (int i = 0; i < 3; ++i) {
    for (const char* path : {"/health", "/livez", "/metrics"}) {
      auto r = http_exchange(port, get_request(path));
      INFO(path << ": " << r.text);
      CHECK(r.status == 200);
      CHECK(r.took < answer_limit);
    }
  }
  slow.stop();
}
