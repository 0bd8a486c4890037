// The room stats bot: one bot built from three actors that talk only by
// messages. add_room_stats() puts them on a client: room_stats_bot.cpp runs
// them as a program, tests/room_stats_kit_tests.cpp tests them with
// kryten::testing.
//
//   presence  adduser / userleave -> who is online
//   chatters  chatmsg -> messages per user (bot commands, "!...", not counted),
//             kept in the JetStream key-value bucket room_stats (key
//             messages.{channel}), so a restarted bot goes on counting; without
//             JetStream it counts in memory and says so once
//   reporter  "!stats" in chat -> asks the other two, then the robot says it;
//             serves the `stats` command on kryten.room-stats.command:
//             {"online": [names, sorted], "messages": {"name": count}}
//
// No actor holds a reference to the client: they talk to the runtime through
// its typed handle (kryten/runtime_protocol.hpp).
#pragma once

#include <caf/actor.hpp>
#include <kryten/kryten.hpp>

struct room_stats_actors {
  caf::actor presence;
  caf::actor chatters;
};

/// Spawns the actors and registers them on `client` (before connect()).
room_stats_actors add_room_stats(kryten::client& client);
/// Stops the actors the client does not own (after the client stopped).
void stop_room_stats(const room_stats_actors& actors);
