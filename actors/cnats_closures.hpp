// The closures cnats holds for a connection (its callbacks' and each
// subscription's), counted. cnats frees them on its own threads, possibly
// after the connection is closed; a closure holding the last reference to an
// actor would then end that actor after its actor system is gone (CAF 0.17
// reads the system when a detached actor's thread ends). Closing a
// connection waits until every closure is freed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>

namespace kryten::detail {

class cnats_closures {
public:
  /// Held by a closure, as its first member so it goes last: while it lives,
  /// the closure counts as held by cnats.
  class token {
  public:
    token() = default;
    explicit token(std::shared_ptr<cnats_closures> owner) : owner_(std::move(owner)) {
      if (owner_) owner_->add();
    }
    token(token&&) noexcept = default;
    token& operator=(token&& other) noexcept {
      std::swap(owner_, other.owner_);  // ours is released with `other`
      return *this;
    }
    token(const token&) = delete;
    token& operator=(const token&) = delete;
    ~token() {
      if (owner_) owner_->release();
    }

  private:
    std::shared_ptr<cnats_closures> owner_;
  };

  /// True once no closure is held; false when `deadline` passed first.
  bool wait_all_freed(std::chrono::milliseconds deadline) {
    std::unique_lock<std::mutex> guard{mx_};
    return cv_.wait_for(guard, deadline, [this] { return held_ == 0; });
  }

private:
  void add() {
    std::lock_guard<std::mutex> guard{mx_};
    ++held_;
  }
  void release() {
    std::lock_guard<std::mutex> guard{mx_};
    if (--held_ == 0) cv_.notify_all();
  }

  std::mutex mx_;
  std::condition_variable cv_;
  std::size_t held_ = 0;
};

}  // namespace kryten::detail
