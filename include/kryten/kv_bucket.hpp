// A JetStream key-value bucket, from the blocking facade:
//
//   auto stats = client.kv(kryten::kv_bucket_config{"room_stats"});  // opened or created
//   stats.put_json("lounge", {{"chats", 12}});
//   auto lounge = stats.get_json("lounge");             // std::nullopt: no value
//   stats.watch(">", [](const kryten::kv_entry& e) { ... });
//
// Each call waits for the runtime's answer; errors throw kv_error. Actors
// use the same operations as messages (runtime_protocol.hpp, kv_*_atom).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "kryten/errors.hpp"
#include "kryten/kv.hpp"
#include "kryten/runtime_protocol.hpp"

namespace kryten {

/// A key-value operation failed; code() says why (no_jetstream,
/// no_such_bucket, timeout, not_connected, bad_input, store_failed).
class kv_error : public std::runtime_error {
public:
  kv_error(const std::string& what, error_code code) : std::runtime_error(what), code_(code) {}
  error_code code() const { return code_; }

private:
  error_code code_;
};

class kv_bucket {
public:
  kv_bucket(caf::actor_system& system, runtime_actor runtime, std::string name,
            std::shared_ptr<spdlog::logger> log);

  const std::string& name() const { return name_; }

  /// The value's bytes; nullopt when the key has none (never set, or deleted).
  std::optional<std::string> get(std::string_view key) const;
  /// The value parsed as JSON; nullopt when the key has none; kv_error
  /// (bad_input) when the value is not JSON.
  std::optional<nlohmann::json> get_json(std::string_view key) const;
  /// Writes the bytes; returns the value's revision.
  std::uint64_t put(std::string_view key, std::string_view value) const;
  /// Writes the JSON value as kryten-py's kv_put(..., as_json=True) does.
  std::uint64_t put_json(std::string_view key, const nlohmann::json& value) const;
  /// Deletes the key's value (a delete marker, as kryten-py's kv_delete).
  void erase(std::string_view key) const;
  /// The keys that have a value.
  std::vector<std::string> keys() const;
  /// Every key's bytes.
  std::map<std::string, std::string> get_all() const;
  /// Every key's value as JSON (values that are not JSON are left out and logged).
  std::map<std::string, nlohmann::json> get_all_json() const;

  /// Watches a key (">" or a wildcard pattern for several): the callback runs,
  /// in an actor of its own, for each current value and then every change
  /// (operation put, erase or purge). Returns the watch's label.
  std::string watch(std::string_view key, std::function<void(const kv_entry&)> callback) const;
  /// The same, delivering each change to an actor as a kv_entry message.
  std::string watch(std::string_view key, caf::actor actor) const;
  /// Ends a watch (kv_error unknown_handler when there is none).
  void unwatch(const std::string& label) const;

private:
  caf::actor_system* system_;
  runtime_actor runtime_;
  std::string name_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace kryten
