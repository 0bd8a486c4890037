// The key-value actor: the JetStream key-value store (kv.hpp) for the whole
// runtime. Its calls block on the server (up to the JetStream timeout), so it
// runs on a thread of its own, apart from the connection actor that owns
// the connection and forwards requests here. Each watch has a thread of its
// own that waits in cnats and sends every change to its actor as a kv_entry.
//
// Protocol (failures are kryten errors: not_connected, timeout, no_jetstream,
// no_such_bucket, bad_input, store_failed):
//   (kv_open_atom, kv_bucket_config)            -> bool (true: it was created)
//   (kv_get_atom, bucket, key)                  -> kv_entry (found = false: no value)
//   (kv_get_atom, bucket)                       -> std::vector<kv_entry>, every live key
//   (kv_put_atom, bucket, key, value)           -> std::uint64_t revision
//   (kv_delete_atom, bucket, key)               -> bool
//   (kv_keys_atom, bucket)                      -> std::vector<std::string>
//   (kv_watch_atom, bucket, key, actor)         -> std::string label; key ">" = all;
//                                                  the actor gets the current values,
//                                                  then every change
//   (unsubscribe_atom, label)                   -> bool; ends a watch
#pragma once

#include <chrono>
#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <nats/nats.h>
#include <spdlog/logger.h>

namespace kryten::detail {

/// Prefix of watch labels ("kv-watch#3"), so the runtime knows where to end one.
inline constexpr const char* kv_watch_label_prefix = "kv-watch#";

struct kv_spec {
  natsConnection* connection = nullptr;  // JetStream keeps its own reference
  std::chrono::milliseconds timeout{std::chrono::seconds(5)};
  std::shared_ptr<spdlog::logger> log;
};

/// Spawns the actor, or an error text when JetStream cannot be set up.
caf::actor spawn_kv_actor(caf::actor_system& sys, const kv_spec& spec, std::string& error);

}  // namespace kryten::detail
