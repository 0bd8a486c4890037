// The runtime as a typed actor: everything a user's actor may ask of it,
// without a reference to the client. Get the handle from client::runtime(),
// or as the second argument of a handler factory:
//
//   client.on_actor("chatmsg", [](caf::actor_system& sys, kryten::runtime_actor rt) {
//     return sys.spawn(greeter, rt);
//   });
//
// Every request is answered asynchronously (nothing blocks the asking actor);
// failures arrive as caf::error values of kryten's category (errors.hpp):
// timeout, no_responders, not_connected, bad_input, unknown_handler, and for
// the key-value store no_jetstream, no_such_bucket, store_failed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>
#include <nlohmann/json.hpp>

#include "kryten/commands.hpp"
#include "kryten/errors.hpp"
#include "kryten/events.hpp"
#include "kryten/handler.hpp"
#include "kryten/health.hpp"
#include "kryten/kv.hpp"
#include "kryten/message_types.hpp"

namespace kryten {

/// One lifecycle metadata entry (PROTOCOL.md §3: `metadata` of every later event).
struct metadata_entry {
  std::string key;
  nlohmann::json value;
};

using runtime_actor = caf::typed_actor<
  /// Publishes `data` on `subject`; failures are counted and logged.
  caf::reacts_to<publish_atom, std::string /*subject*/, std::string /*data*/>,
  /// Sends a command to another service; answers with its request id.
  caf::replies_to<command_atom, outgoing_command>::with<std::string>,
  /// The same for a chat or PM message (robot.hpp): sent no sooner than
  /// chat_min_delay plus a random 0..chat_jitter seconds after the previous
  /// one, as kryten-py throttles them; answers the request id at once.
  caf::replies_to<chat_atom, outgoing_command>::with<std::string>,
  /// Both without an answer, under a request id the sender chose (a UUID):
  /// nothing to wait for, so a handler that sends a reply is not held up.
  caf::reacts_to<command_atom, outgoing_command, std::string /*request_id*/>,
  caf::reacts_to<chat_atom, outgoing_command, std::string /*request_id*/>,
  /// Request/reply: answers with the reply's data (timeout, no_responders,
  /// not_connected, bad_input otherwise).
  caf::replies_to<request_atom, std::string /*subject*/, std::string /*data*/,
                  caf::timespan /*timeout*/>::with<std::string>,
  /// Subscribes an actor to a subject (wildcards allowed): it receives a
  /// bus_message for each message and answers with nothing. Answers with the
  /// subscription's label.
  caf::replies_to<subscribe_atom, std::string /*subject*/, caf::actor>::with<std::string>,
  /// Ends a subscription by its label (unknown_handler when there is none).
  caf::replies_to<unsubscribe_atom, std::string /*label*/>::with<bool>,
  /// Registers an actor as a handler of an event name ("*" = every event):
  /// it receives the typed events of events.hpp and answers each with nothing.
  /// Answers with the handler's label.
  caf::replies_to<add_atom, std::string /*event name*/, caf::actor,
                  handler_filter>::with<std::string>,
  /// Removes a handler by its label (unknown_handler when there is none).
  caf::replies_to<remove_atom, std::string /*label*/>::with<bool>,
  /// Serves a command on kryten.{service}.command: the actor receives a
  /// command_request and answers a command_result (within handler_timeout).
  caf::replies_to<serve_atom, std::string /*command*/, caf::actor>::with<bool>,
  /// The service's health, as GET /health reports it.
  caf::replies_to<health_atom>::with<health_status>,
  /// Adds an entry to the metadata of every lifecycle event from now on.
  caf::reacts_to<metadata_atom, metadata_entry>,
  /// Asks for a graceful stop (as client::stop(reason)).
  caf::reacts_to<stop_atom, std::string /*reason*/>,
  // -- the JetStream key-value store (kv.hpp) --
  /// Opens a bucket, or creates it (cfg.create); answers true when it was created.
  caf::replies_to<kv_open_atom, kv_bucket_config>::with<bool>,
  /// A key's value (found = false when it has none).
  caf::replies_to<kv_get_atom, std::string /*bucket*/, std::string /*key*/>::with<kv_entry>,
  /// Every key's value.
  caf::replies_to<kv_get_atom, std::string /*bucket*/>::with<std::vector<kv_entry>>,
  /// Writes a value; answers its revision.
  caf::replies_to<kv_put_atom, std::string /*bucket*/, std::string /*key*/,
                  std::string /*value*/>::with<std::uint64_t>,
  caf::replies_to<kv_delete_atom, std::string /*bucket*/, std::string /*key*/>::with<bool>,
  caf::replies_to<kv_keys_atom, std::string /*bucket*/>::with<std::vector<std::string>>,
  /// Watches a key (">" = the whole bucket): the actor receives a kv_entry for
  /// each current value, then for every change. Answers the watch's label,
  /// which unsubscribe_atom ends; the watch also ends with the actor.
  caf::replies_to<kv_watch_atom, std::string /*bucket*/, std::string /*key*/,
                  caf::actor>::with<std::string>>;

}  // namespace kryten

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kryten::metadata_entry)
