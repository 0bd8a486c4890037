#include "actors/http_connection_loop.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace kryten::detail {

namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

// How long a closing connection may linger once stop() has been called.
constexpr milliseconds stop_linger = 50ms;
// Connections accepted per wake-up, so that reading is not starved by a storm.
constexpr int accepts_per_round = 64;
// How long to stop accepting when out of file descriptors.
constexpr milliseconds accept_pause = 100ms;

enum class phase {
  reading,    // the request head
  body,       // the request body (discarded)
  queued,     // with the workers
  writing,    // the answer
  lingering,  // answer sent, our side shut: waiting for the client's close
};

struct connection {
  int fd = -1;
  phase ph = phase::reading;
  clock::time_point accepted;
  clock::time_point deadline;  // of the current phase (not used while queued)
  std::string in;              // what arrived of the head
  request_head head;           // once complete
  std::uint64_t body_left = 0;
  std::string out;
  std::size_t sent = 0;
  bool polled = false;  // has been in a poll() set: had a chance to be read
};

struct job {
  std::uint64_t id;
  request_head head;
  clock::time_point accepted;
};

struct answer {
  std::uint64_t id;
  std::string bytes;
};

void close_fd(int fd) {
  if (fd >= 0)
    ::close(fd);
}

/// One non-blocking attempt to send `bytes`, then close: for connections
/// that get no more of our time.
void send_once_and_close(int fd, const std::string& bytes) {
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

int poll_timeout(clock::time_point now, clock::time_point next) {
  if (next == clock::time_point::max())
    return -1;
  if (next <= now)
    return 0;
  auto ms = std::chrono::duration_cast<milliseconds>(next - now + 999us).count();
  return static_cast<int>(std::min<long long>(ms, 60'000));
}

void name_thread(const char* name) {
  ::pthread_setname_np(::pthread_self(), name);
}

}  // namespace

struct http_connection_loop::state {
  state(tcp_listener l, http_loop_limits lim, handler h, notifier n)
    : listen_fd(l.fd), limits(lim), handle(std::move(h)), note(std::move(n)) {
    limits.threads = std::max<std::size_t>(limits.threads, 1);
    limits.max_connections = std::max<std::size_t>(limits.max_connections, 1);
    if (!note)
      note = [](const std::string&, const std::string&) {};
    timeout_bytes = serialize(error_response(408, "request not received in time"));
    overload_bytes = serialize(error_response(503, "too many connections"));
  }

  ~state() {
    close_fd(listen_fd);
    close_fd(wake_fd);
  }

  // -- configuration --
  int listen_fd;
  int wake_fd = -1;
  http_loop_limits limits;
  handler handle;
  notifier note;
  std::string timeout_bytes;
  std::string overload_bytes;

  // -- shared between the I/O thread, the workers and stop() --
  std::mutex m;
  std::condition_variable work;
  std::deque<job> jobs;        // to the workers
  std::vector<answer> answers;  // from the workers
  bool stopping = false;

  std::atomic<std::uint64_t> n_accepted{0}, n_dispatched{0}, n_timed_out{0}, n_evicted{0},
    n_rejected{0}, n_bad{0};

  // -- the I/O thread's own --
  std::map<std::uint64_t, connection> conns;  // by id: in the order accepted
  std::uint64_t next_id = 1;
  std::vector<std::uint64_t> due;  // expire()'s, kept to reuse its memory
  clock::time_point accept_paused_until{};
  bool listener_open = true;

  std::thread io;
  std::vector<std::thread> workers;
  bool started = false;
  bool stopped = false;
  std::mutex lifecycle;  // start/stop

  void wake() {
    std::uint64_t one = 1;
    (void)!::write(wake_fd, &one, sizeof one);
  }

  // -- workers ------------------------------------------------------------------

  void worker() {
    name_thread("kryten-http-w");
    while (true) {
      job j;
      {
        std::unique_lock<std::mutex> lk(m);
        work.wait(lk, [&] { return stopping || !jobs.empty(); });
        if (jobs.empty())
          return;  // stopping, and nothing left to answer
        j = std::move(jobs.front());
        jobs.pop_front();
      }
      http_response res;
      try {
        res = handle(j.head, j.accepted);
      } catch (const std::exception& e) {
        res = error_response(500, e.what());
      } catch (...) {
        res = error_response(500, "internal error");
      }
      auto bytes = serialize(res, j.head.method == "HEAD");
      {
        std::lock_guard<std::mutex> lk(m);
        answers.push_back({j.id, std::move(bytes)});
      }
      wake();
    }
  }

  // -- the I/O thread -----------------------------------------------------------

  void close_conn(std::uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end())
      return;
    close_fd(it->second.fd);
    conns.erase(it);
  }

  void begin_write(std::uint64_t id, connection& c, std::string bytes, clock::time_point now) {
    c.ph = phase::writing;
    c.out = std::move(bytes);
    c.sent = 0;
    c.in.clear();
    c.in.shrink_to_fit();
    c.deadline = now + limits.write_timeout;
    flush(id, c, now);
  }

  /// Sends what it can; false when the connection was closed.
  bool flush(std::uint64_t id, connection& c, clock::time_point now) {
    while (c.sent < c.out.size()) {
      auto n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent,
                      MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return true;  // wait for POLLOUT
      close_conn(id);
      return false;
    }
    // All sent: shut our side and wait a little for the client's close.
    ::shutdown(c.fd, SHUT_WR);
    c.out.clear();
    c.out.shrink_to_fit();
    c.ph = phase::lingering;
    c.deadline = now + (stopping_now() ? std::min(stop_linger, limits.linger) : limits.linger);
    return true;
  }

  bool stopping_now() {
    std::lock_guard<std::mutex> lk(m);
    return stopping;
  }

  void dispatch(std::uint64_t id, connection& c, clock::time_point now) {
    c.ph = phase::queued;
    c.in.clear();
    c.in.shrink_to_fit();
    bool queued = false;
    {
      std::lock_guard<std::mutex> lk(m);
      if (!stopping) {
        jobs.push_back({id, std::move(c.head), c.accepted});
        queued = true;
      }
    }
    if (queued) {
      ++n_dispatched;
      work.notify_one();
    } else {
      begin_write(id, c, serialize(error_response(503, "shutting down"), c.head.method == "HEAD"),
                  now);
    }
  }

  void reject(std::uint64_t id, connection& c, int status, const std::string& why,
              clock::time_point now) {
    ++n_bad;
    note("bad_request", "HTTP probe: answered " + std::to_string(status) + " (" + why + ")");
    begin_write(id, c, serialize(error_response(status, why)), now);
  }

  /// The head (or body) of `c` grew: decides what happens next.
  void advance(std::uint64_t id, connection& c, clock::time_point now) {
    auto head = parse_request_head(c.in, limits.head);
    if (head.state == parse_state::incomplete)
      return;
    if (head.state == parse_state::error)
      return reject(id, c, head.error_status, head.error, now);
    auto length = head.content_length.value_or(0);
    if (length > limits.max_body_bytes)
      return reject(id, c, 413, "request body too large", now);
    auto already = c.in.size() - head.head_bytes;
    c.head = std::move(head);
    if (already >= length)
      return dispatch(id, c, now);
    c.body_left = length - already;
    c.ph = phase::body;
    c.in.clear();
  }

  void on_readable(std::uint64_t id, connection& c, clock::time_point now) {
    char buf[4096];
    auto n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return;
    if (n <= 0)
      return close_conn(id);  // closed, or an error
    auto got = static_cast<std::size_t>(n);
    switch (c.ph) {
      case phase::reading:
        c.in.append(buf, got);
        return advance(id, c, now);
      case phase::body:
        c.body_left -= std::min<std::uint64_t>(c.body_left, got);
        if (c.body_left == 0)
          dispatch(id, c, now);
        return;
      case phase::lingering:
        return;  // discarded
      case phase::queued:
      case phase::writing:
        return;
    }
  }

  void accept_ready(clock::time_point now) {
    for (int i = 0; i < accepts_per_round; ++i) {
      if (conns.size() >= limits.max_connections) {
        auto r = make_room();
        if (r == room::later)
          return;  // next round, once the new ones have been read
        if (r == room::none) {
          if (!reject_one())
            return;  // nobody waiting
          continue;
        }
      }
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED)
          continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          accept_paused_until = now + accept_pause;
          note("accept", std::string("HTTP probe: cannot accept connections: ") +
                           std::strerror(errno));
        }
        return;  // EAGAIN, or nothing we can do now
      }
      ++n_accepted;
      connection c;
      c.fd = fd;
      c.accepted = now;
      c.deadline = now + limits.request_timeout;
      conns.emplace(next_id++, std::move(c));
    }
  }

  /// Accepts one connection only to answer it 503 (every one open has a
  /// request in progress).
  bool reject_one() {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return false;
    ++n_accepted;
    ++n_rejected;
    note("overload", "HTTP probe: " + std::to_string(conns.size()) +
                       " connections open, each with a request in progress; answered a new one 503");
    send_once_and_close(fd, overload_bytes);
    return true;
  }

  enum class room { made, later, none };

  /// At the cap: closes the oldest connection whose answer is out (its
  /// client has it), else the oldest one still sending its request that has
  /// had a chance to be read. `later` when the only candidates have not had
  /// it yet (accepted in this round: the newcomer waits in the backlog until
  /// they have), `none` when every connection has a request in progress.
  room make_room() {
    for (auto& [id, c] : conns)
      if (c.ph == phase::lingering) {
        close_conn(id);
        return room::made;
      }
    bool unread = false;
    for (auto& [id, c] : conns) {
      if (c.ph != phase::reading && c.ph != phase::body)
        continue;
      if (!c.polled) {
        unread = true;
        continue;
      }
      ++n_evicted;
      note("evicted", "HTTP probe: " + std::to_string(conns.size()) +
                        " connections open; closed the oldest one still sending its request");
      close_conn(id);
      return room::made;
    }
    return unread ? room::later : room::none;
  }

  static bool still_sending(const connection& c) {
    return c.ph == phase::reading || c.ph == phase::body;
  }

  /// Reads what already waits on a connection whose deadline has passed:
  /// when the loop itself was late (a stalled machine), a request that
  /// arrived in time is answered, not timed out.
  void read_waiting(std::uint64_t id, clock::time_point now) {
    const auto most = (limits.head.max_head_bytes + limits.max_body_bytes) / 4096 + 2;
    for (std::size_t i = 0; i < most; ++i) {
      auto it = conns.find(id);
      if (it == conns.end() || !still_sending(it->second))
        return;
      pollfd p{it->second.fd, POLLIN, 0};
      if (::poll(&p, 1, 0) != 1)
        return;
      on_readable(id, it->second, now);
    }
  }

  void expire(clock::time_point now) {
    due.clear();
    for (auto& [id, c] : conns)
      if (c.ph != phase::queued && c.deadline <= now)
        due.push_back(id);
    for (auto id : due) {
      if (auto it = conns.find(id); it != conns.end() && still_sending(it->second))
        read_waiting(id, now);
      auto it = conns.find(id);
      if (it == conns.end() || it->second.deadline > now)
        continue;  // closed, or on to its next phase
      auto& c = it->second;
      if (still_sending(c)) {
        ++n_timed_out;
        note("timeout", "HTTP probe: closed a connection that sent no complete request within " +
                          std::to_string(limits.request_timeout.count()) + " ms");
        send_once_and_close(c.fd, timeout_bytes);
      } else if (c.ph == phase::queued) {
        continue;  // its request is complete and with the workers
      } else {
        if (c.ph == phase::writing)
          note("write_timeout", "HTTP probe: a client did not take its answer within " +
                                  std::to_string(limits.write_timeout.count()) + " ms");
        close_fd(c.fd);
      }
      conns.erase(it);
    }
  }

  /// Once stop() was called: no more accepting or reading requests.
  void wind_down(clock::time_point now) {
    if (listener_open) {
      close_fd(listen_fd);
      listen_fd = -1;
      listener_open = false;
    }
    for (auto it = conns.begin(); it != conns.end();) {
      auto& c = it->second;
      if (c.ph == phase::reading || c.ph == phase::body) {
        close_fd(c.fd);
        it = conns.erase(it);
        continue;
      }
      if (c.ph == phase::lingering)
        c.deadline = std::min(c.deadline, now + stop_linger);
      ++it;
    }
  }

  void run() {
    name_thread("kryten-http-io");
    std::vector<pollfd> fds;
    std::vector<std::uint64_t> ids;
    while (true) {
      auto now = clock::now();
      std::vector<answer> ready;
      bool stop_seen;
      {
        std::lock_guard<std::mutex> lk(m);
        ready.swap(answers);
        stop_seen = stopping;
      }
      for (auto& a : ready) {
        auto it = conns.find(a.id);
        if (it != conns.end())
          begin_write(a.id, it->second, std::move(a.bytes), now);
      }
      if (stop_seen)
        wind_down(now);
      expire(now);
      if (stop_seen && conns.empty())
        return;

      fds.clear();
      ids.clear();
      fds.push_back({wake_fd, POLLIN, 0});
      bool accepting = listener_open && now >= accept_paused_until;
      fds.push_back({accepting ? listen_fd : -1, POLLIN, 0});
      auto next = clock::time_point::max();
      if (listener_open && !accepting)
        next = accept_paused_until;
      for (auto& [id, c] : conns) {
        if (c.ph == phase::queued)
          continue;
        next = std::min(next, c.deadline);
        short events = c.ph == phase::writing ? POLLOUT : POLLIN;
        fds.push_back({c.fd, events, 0});
        c.polled = true;
        ids.push_back(id);
      }
      int rc = ::poll(fds.data(), fds.size(), poll_timeout(now, next));
      if (rc < 0 && errno != EINTR) {
        note("poll", std::string("HTTP probe: poll failed: ") + std::strerror(errno));
        std::this_thread::sleep_for(10ms);
        continue;
      }
      if (rc <= 0)
        continue;
      now = clock::now();
      if (fds[0].revents != 0) {
        std::uint64_t count;
        (void)!::read(wake_fd, &count, sizeof count);
      }
      for (std::size_t i = 0; i < ids.size(); ++i) {
        auto revents = fds[i + 2].revents;
        if (revents == 0)
          continue;
        auto it = conns.find(ids[i]);
        if (it == conns.end())
          continue;  // closed to make room
        auto& c = it->second;
        if (c.ph == phase::writing) {
          if (revents & (POLLERR | POLLNVAL))
            close_conn(ids[i]);
          else
            flush(ids[i], c, now);
        } else {
          on_readable(ids[i], c, now);  // errors and hang-ups show as a failed read
        }
      }
      // Last, so that the connections just served have made room.
      if (fds[1].revents != 0)
        accept_ready(now);
    }
  }
};

http_connection_loop::http_connection_loop(tcp_listener listener, http_loop_limits limits,
                                           handler h, notifier n)
  : state_(std::make_unique<state>(listener, limits, std::move(h), std::move(n))) {}

http_connection_loop::~http_connection_loop() {
  stop();
}

void http_connection_loop::start() {
  auto& s = *state_;
  std::lock_guard<std::mutex> lk(s.lifecycle);
  if (s.started)
    return;
  s.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s.wake_fd < 0)
    throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  s.started = true;
  s.workers.reserve(s.limits.threads);
  for (std::size_t i = 0; i < s.limits.threads; ++i)
    s.workers.emplace_back([&s] { s.worker(); });
  s.io = std::thread([&s] { s.run(); });
}

void http_connection_loop::stop() {
  auto& s = *state_;
  std::lock_guard<std::mutex> lk(s.lifecycle);
  if (!s.started || s.stopped)
    return;
  s.stopped = true;
  {
    std::lock_guard<std::mutex> g(s.m);
    s.stopping = true;
  }
  s.work.notify_all();
  s.wake();
  // The workers answer what is queued (each within a callback's deadline),
  // the I/O thread sends it and returns once no connection is left.
  for (auto& w : s.workers)
    w.join();
  s.io.join();
}

http_connection_loop::counters http_connection_loop::stats() const {
  const auto& s = *state_;
  counters c;
  c.accepted = s.n_accepted;
  c.dispatched = s.n_dispatched;
  c.timed_out = s.n_timed_out;
  c.evicted = s.n_evicted;
  c.rejected = s.n_rejected;
  c.bad = s.n_bad;
  return c;
}

}  // namespace kryten::detail
