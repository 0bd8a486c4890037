// The room stats bot's actors (room_stats.hpp): presence, chatters and the
// reporter, which talk only by messages.
#include "room_stats.hpp"

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <kryten/kryten.hpp>

namespace {

using namespace std::chrono_literals;
using online_atom = caf::atom_constant<caf::atom("online")>;
using counts_atom = caf::atom_constant<caf::atom("counts")>;
using load_atom = caf::atom_constant<caf::atom("load")>;
using message_counts = std::map<std::string, std::int64_t>;

// -- the actors' interfaces ------------------------------------------------------

/// Who is in the room.
using presence_actor = caf::typed_actor<
  caf::reacts_to<kryten::user_join>, caf::reacts_to<kryten::user_leave>,
  caf::reacts_to<kryten::raw_event>,  // an adduser/userleave whose payload did not fit
  caf::replies_to<online_atom>::with<std::vector<std::string>>>;

/// Chat messages per user.
using chatters_actor = caf::typed_actor<
  caf::reacts_to<kryten::chat_message>, caf::reacts_to<kryten::raw_event>,
  caf::reacts_to<load_atom>,  // (its own) read the stored counts
  caf::replies_to<counts_atom>::with<message_counts>>;

// -- presence ---------------------------------------------------------------------

/// Joins and leaves come through two registrations (adduser, userleave), each
/// in order but not with each other: the runtime's arrival stamp says which
/// of two events for one user came last.
struct presence_state {
  std::string room;  // the channel it watches
  struct seen {
    bool online = false;
    std::int64_t at_ns = 0;  // received_ns of the event that said so
  };
  std::map<std::string, seen> users;  // sorted by name
  static inline const char* name = "room_stats.presence";

  void saw(const kryten::event_envelope& e, const std::string& user, bool online) {
    auto& u = users[user];
    if (e.received_ns >= u.at_ns)
      u = {online, e.received_ns};
  }
};

presence_actor::behavior_type presence(presence_actor::stateful_pointer<presence_state> self,
                                       std::string room) {
  self->state.room = std::move(room);
  return {
    [self](const kryten::user_join& j) { self->state.saw(j, j.username, true); },
    [self](const kryten::user_leave& l) { self->state.saw(l, l.username, false); },
    [](const kryten::raw_event&) {},
    [self](online_atom) {
      std::vector<std::string> online;
      for (auto& [user, seen] : self->state.users)
        if (seen.online)
          online.push_back(user);
      return online;
    },
  };
}

// -- chatters ---------------------------------------------------------------------

const std::string counts_bucket = "room_stats";

struct chatters_state {
  std::string room;  // the channel it watches
  kryten::runtime_actor runtime;
  message_counts counts;
  bool stored = false;  // the bucket's counts are loaded: each change is written back
  static inline const char* name = "room_stats.chatters";

  std::string key() const { return "messages." + room; }
};

using chatters_self = chatters_actor::stateful_pointer<chatters_state>;

void save(chatters_self self) {
  auto& s = self->state;
  if (!s.stored)
    return;
  self->request(s.runtime, 10s, kryten::kv_put_atom::value, counts_bucket, s.key(),
                kryten::kv_json_value(s.counts))
    .then([](std::uint64_t) {},
          [](caf::error& e) { std::cerr << "room_stats: saving counts: " << kryten::describe(e) << "\n"; });
}

/// Adds the stored counts to those seen so far (events may come before the
/// store answers), then keeps the sum stored.
void merge_stored(chatters_self self, const kryten::kv_entry& entry) {
  auto& s = self->state;
  if (entry.found) {
    auto stored = entry.json();
    if (stored.is_object())
      for (auto& [user, n] : stored.items())
        if (n.is_number_integer())
          s.counts[user] += n.get<std::int64_t>();
  }
  s.stored = true;
  save(self);
}

/// Opens (or creates) the bucket and reads the room's counts; retried while
/// NATS is not connected yet, given up (memory only) when there is no JetStream.
void load(chatters_self self) {
  auto& s = self->state;
  auto failed = [self](caf::error& e) {
    if (kryten::code_of(e) == kryten::error_code::not_connected) {
      self->delayed_send(self, 250ms, load_atom::value);
      return;
    }
    std::cerr << "room_stats: counts kept in memory only: " << kryten::describe(e) << "\n";
  };
  self->request(s.runtime, 10s, kryten::kv_open_atom::value,
                kryten::kv_bucket_config{counts_bucket, "room_stats_bot's message counts"})
    .then(
      [self, failed](bool) {
        self->request(self->state.runtime, 10s, kryten::kv_get_atom::value, counts_bucket,
                      self->state.key())
          .then([self](kryten::kv_entry& e) { merge_stored(self, e); }, failed);
      },
      failed);
}

chatters_actor::behavior_type chatters(chatters_self self, std::string room,
                                       kryten::runtime_actor runtime) {
  self->state.room = std::move(room);
  self->state.runtime = std::move(runtime);
  load(self);
  return {
    [self](const kryten::chat_message& m) {
      if (m.username.empty() || m.message.rfind("!", 0) == 0)
        return;
      ++self->state.counts[m.username];
      save(self);
    },
    [](const kryten::raw_event&) {},
    [self](load_atom) { load(self); },
    [self](counts_atom) { return self->state.counts; },
  };
}

// -- reporter ---------------------------------------------------------------------

nlohmann::json stats_json(const std::vector<std::string>& online, const message_counts& counts) {
  return {{"online", online}, {"messages", counts}};
}

/// "Online (2): alice, bob. Messages: alice 3, bob 1."
std::string stats_line(const std::vector<std::string>& online, const message_counts& counts) {
  std::string line = "Online (" + std::to_string(online.size()) + "):";
  for (std::size_t i = 0; i < online.size(); ++i)
    line += (i == 0 ? " " : ", ") + online[i];
  line += ". Messages:";
  bool first = true;
  for (auto& [user, n] : counts) {
    line += (first ? " " : ", ") + user + " " + std::to_string(n);
    first = false;
  }
  return line + (counts.empty() ? " none." : ".");
}

struct reporter_state {
  kryten::runtime_actor runtime;
  presence_actor presence;
  chatters_actor chatters;
  static inline const char* name = "room_stats.reporter";
};

using reporter_self = caf::stateful_actor<reporter_state>;

/// Asks presence, then chatters, then calls `done(online, counts)`.
template <class F>
void gather(reporter_self* self, F done) {
  self->request(self->state.presence, 2s, online_atom::value)
    .then([self, done](std::vector<std::string>& online) {
      self->request(self->state.chatters, 2s, counts_atom::value)
        .then([online, done](message_counts& counts) mutable { done(online, counts); });
    });
}

caf::behavior reporter(reporter_self* self, kryten::runtime_actor runtime,
                       presence_actor presence_of_room, chatters_actor chatters_of_room) {
  self->state.runtime = runtime;
  self->state.presence = std::move(presence_of_room);
  self->state.chatters = std::move(chatters_of_room);
  // Serve `stats` by this very actor (again after a restart: the newest wins).
  self->request(runtime, 5s, kryten::serve_atom::value, std::string{"stats"},
                caf::actor_cast<caf::actor>(self))
    .then([](bool) {});
  return {
    [self](const kryten::chat_message& m) {
      if (m.shadow || m.message.rfind("!stats", 0) != 0)
        return;
      gather(self, [self, domain = m.domain, channel = m.channel](
                     const std::vector<std::string>& online, const message_counts& counts) {
        kryten::outgoing_command say{"robot", "say", {{"message", stats_line(online, counts)}},
                                     domain, channel};
        self->send(self->state.runtime, kryten::command_atom::value, std::move(say));
      });
    },
    [self](const kryten::command_request&) {
      auto rp = self->make_response_promise<kryten::command_result>();
      gather(self, [rp](const std::vector<std::string>& online,
                        const message_counts& counts) mutable {
        rp.deliver(kryten::command_result::ok(stats_json(online, counts)));
      });
      return rp;
    },
    [](const kryten::raw_event&) {},
    // The answer to the say command (its request id): nothing to do.
    [](const std::string&) {},
  };
}

}  // namespace

room_stats_actors add_room_stats(kryten::client& client) {
  auto& sys = client.system();
  // (CAF 0.17 cannot spawn a function actor without arguments: each takes its room.)
  auto room = client.config().channels.front().channel;
  auto who = sys.spawn(presence, room);
  auto talk = sys.spawn(chatters, room, client.runtime());
  client.on_actor("adduser", caf::actor_cast<caf::actor>(who));
  client.on_actor("userleave", caf::actor_cast<caf::actor>(who));
  client.on_actor("chatmsg", caf::actor_cast<caf::actor>(talk));
  // The reporter keeps no state of its own: made by a factory, it is restarted
  // if it crashes.
  client.on_actor("chatmsg", kryten::runtime_actor_factory{
                               [who, talk](caf::actor_system& s, kryten::runtime_actor rt) {
                                 return s.spawn(reporter, rt, who, talk);
                               }});
  return {caf::actor_cast<caf::actor>(who), caf::actor_cast<caf::actor>(talk)};
}

void stop_room_stats(const room_stats_actors& actors) {
  // Ours to stop: the actor system waits for every actor before it goes.
  caf::anon_send_exit(actors.presence, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(actors.chatters, caf::exit_reason::user_shutdown);
}
