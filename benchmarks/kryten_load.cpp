// kryten-load: a load generator to point at a Kryten bot. Publishes realistic
// RawEvents (PROTOCOL.md §1) for one or more channels, at a fixed rate or as
// fast as possible, for a count or a duration. Every event carries its send
// time: payload.sent_ns (CLOCK_MONOTONIC ns) and the RawEvent timestamp.
//
// Cheap per message: a ring of frames is serialised once; sending one patches
// the timestamp fields in place and hands the bytes to cnats (which batches
// writes on its flusher thread); a PING/PONG flush every --flush-every messages
// keeps the publisher from running ahead of the server.
#include <csignal>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include <kryten/subjects.hpp>

#include "bench_util.hpp"

namespace {

using kbench::usage_error;

constexpr const char* usage_text = R"(kryten-load: publish realistic CyTube events to a Kryten bot

usage: kryten-load [options]

  --server URL       NATS server (default nats://127.0.0.1:4222)
  --channel NAMES    channel, or comma-separated channels used round-robin
                     (default lounge)
  --domain NAME      RawEvent domain (default cytu.be)
  --rate N           events per second; 0 = as fast as possible (default 1000)
  --count N          stop after N events
  --duration S       stop after S seconds (default 10 when --count is not given)
  --mix WEIGHTS      relative weights, as name=weight pairs or six numbers in this
                     order: chat,ping,adduser,userleave,changemedia,playlist
                     (default chat=70,ping=2,adduser=8,userleave=8,changemedia=4,playlist=8)
                     chat = plain chat lines and some "!commands" other than !ping;
                     ping = "!ping" chat messages, which echo bots answer
  --size BYTES       pad each event to about BYTES bytes (default: natural, ~250-450)
  --ring N           distinct pre-built frames (default 4096)
  --flush-every N    PING/PONG flush every N messages (default 5000)
  --seed N           random seed of the frame ring (default 1)
  --send-asap on|off write each event to the socket at once instead of letting
                     cnats' flusher thread coalesce writes (default: on with
                     --rate, off at full speed; on keeps the flusher's batching
                     delay out of measured latency, off is cheaper per event)
  --quiet            no progress lines on stderr
  --json             print the summary as JSON on stdout
  --help             this text

Each event goes to kryten.events.cytube.{channel}.{event} and carries
payload.sent_ns = CLOCK_MONOTONIC nanoseconds at publish (receivers on the same
machine subtract it from their own steady_clock), the RawEvent timestamp (ISO
8601 UTC, microseconds) of the same moment, and for !ping messages the username
"p<20-digit sent_ns>", so that the "Pong! <username>" reply tells its own latency.

Exit codes: 0 done, 1 NATS error, 2 bad command line.
)";

volatile std::sig_atomic_t stop_flag = 0;
extern "C" void on_signal(int) { stop_flag = 1; }

enum kind { k_chat, k_ping, k_adduser, k_userleave, k_changemedia, k_playlist, k_count };
const char* kind_names[k_count] = {"chat", "ping", "adduser", "userleave", "changemedia", "playlist"};
const char* event_names[k_count] = {"chatMsg", "chatMsg", "addUser", "userLeave", "changeMedia", "playlist"};

constexpr std::size_t sent_width = 20;  // digits then spaces: valid JSON, fixed width
constexpr std::string_view ping_marker = "pXXXXXXXXXXXXXXXXXXXX";  // "p" + 20

struct frame {
  std::string subject;
  std::string body;
  kind k = k_chat;
  std::size_t off_sent = 0;
  std::size_t off_iso = 0;
  std::size_t off_corr = 0;  // the uuid's last 12 hex digits
  std::size_t off_user = std::string::npos;
};

struct options {
  std::string server = "nats://127.0.0.1:4222";
  std::vector<std::string> channels{"lounge"};
  std::string domain = "cytu.be";
  double rate = 1000;
  std::int64_t count = -1;
  double duration = -1;
  std::array<double, k_count> mix{70, 2, 8, 8, 4, 8};
  std::size_t size = 0;
  std::size_t ring = 4096;
  std::int64_t flush_every = 5000;
  std::uint64_t seed = 1;
  bool quiet = false;
  bool json = false;
  std::optional<bool> send_asap;
};

std::array<double, k_count> parse_mix(const std::string& text) {
  std::array<double, k_count> w{};
  auto parts = kbench::split(text, ',');
  bool named = text.find('=') != std::string::npos;
  if (!named && parts.size() != k_count)
    throw usage_error("--mix: six weights or name=weight pairs");
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::string name, value = parts[i];
    std::size_t idx = i;
    if (named) {
      auto eq = parts[i].find('=');
      if (eq == std::string::npos)
        throw usage_error("--mix: expected name=weight, got " + parts[i]);
      name = parts[i].substr(0, eq);
      value = parts[i].substr(eq + 1);
      idx = k_count;
      for (std::size_t k = 0; k < k_count; ++k)
        if (name == kind_names[k])
          idx = k;
      if (idx == k_count)
        throw usage_error("--mix: unknown event kind " + name);
    }
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || v < 0)
      throw usage_error("--mix: bad weight " + value);
    w[idx] = v;
  }
  double total = 0;
  for (auto v : w)
    total += v;
  if (total <= 0)
    throw usage_error("--mix: all weights are zero");
  return w;
}

options parse(int argc, char** argv) {
  options o;
  kbench::arg_reader a{argc, argv};
  while (a.next()) {
    if (a.is("--help") || a.is("-h")) {
      std::cout << usage_text;
      std::exit(0);
    } else if (a.is("--server")) o.server = a.value();
    else if (a.is("--channel")) o.channels = kbench::split(a.value(), ',');
    else if (a.is("--domain")) o.domain = a.value();
    else if (a.is("--rate")) o.rate = a.number();
    else if (a.is("--count")) o.count = a.integer();
    else if (a.is("--duration")) o.duration = a.number();
    else if (a.is("--mix")) o.mix = parse_mix(a.value());
    else if (a.is("--size")) o.size = static_cast<std::size_t>(std::max<std::int64_t>(0, a.integer()));
    else if (a.is("--ring")) o.ring = static_cast<std::size_t>(std::max<std::int64_t>(1, a.integer()));
    else if (a.is("--flush-every")) o.flush_every = std::max<std::int64_t>(1, a.integer());
    else if (a.is("--seed")) o.seed = static_cast<std::uint64_t>(a.integer());
    else if (a.is("--send-asap")) {
      auto v = a.value();
      if (v != "on" && v != "off")
        throw usage_error("--send-asap: on or off");
      o.send_asap = v == "on";
    } else if (a.is("--quiet")) o.quiet = true;
    else if (a.is("--json")) o.json = true;
    else throw usage_error("unknown option " + a.name());
  }
  if (o.channels.empty())
    throw usage_error("--channel: at least one channel");
  if (o.rate < 0)
    throw usage_error("--rate: must be >= 0");
  if (o.count < 0 && o.duration < 0)
    o.duration = 10;
  if (o.count == 0 || o.duration == 0)
    throw usage_error("--count/--duration: must be > 0");
  return o;
}

// -- frames ------------------------------------------------------------------------

const char* users[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
                       "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert",
                       "sybil", "trent", "victor", "walter", "xena", "yusuf", "zoe",
                       "KittyKat420", "movie_buff", "Night_Owl", "popcorn", "lurker99"};
const char* lines[] = {
  "lol", "hello everyone", "this movie is so bad it's good", "who picked this?",
  "brb getting snacks", "the soundtrack slaps", "can we skip the intro",
  "I have seen this one like ten times", "wait what just happened", "haha",
  "anyone know the name of this song?", "5/7 perfect movie", "this scene though",
  "good evening chat", "gn all, see you tomorrow", "the plot twist is coming"};
const char* other_commands[] = {"!help", "!roll 2d6", "!skip", "!np", "!time", "!weather london"};
const char* titles[] = {"Big Buck Bunny", "Never Gonna Give You Up", "Some Documentary (1998)",
                        "Cat Compilation #7", "Lo-fi beats to relax to", "Trailer Park Boys S01E01"};

std::string media_id(std::mt19937_64& rng) {
  static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string id;
  for (int i = 0; i < 11; ++i)
    id += alphabet[rng() % 64];
  return id;
}

template <class T, std::size_t N>
const T& pick(std::mt19937_64& rng, const T (&arr)[N]) {
  return arr[rng() % N];
}

nlohmann::json make_payload(kind k, std::mt19937_64& rng, std::int64_t epoch_ms) {
  using nlohmann::json;
  switch (k) {
    case k_chat: {
      std::string msg = rng() % 10 == 0 ? pick(rng, other_commands) : pick(rng, lines);
      return {{"username", pick(rng, users)}, {"msg", msg},
              {"meta", json::object()}, {"time", epoch_ms}};
    }
    case k_ping:
      return {{"username", std::string{ping_marker}}, {"msg", "!ping"},
              {"meta", json::object()}, {"time", epoch_ms}};
    case k_adduser:
      return {{"name", pick(rng, users)},
              {"rank", static_cast<int>(rng() % 3)},
              {"profile", {{"image", ""}, {"text", ""}}},
              {"meta", {{"afk", false}, {"muted", false}}}};
    case k_userleave:
      return {{"name", pick(rng, users)}};
    case k_changemedia: {
      auto secs = 60 + static_cast<int>(rng() % 7200);
      char dur[16];
      std::snprintf(dur, sizeof(dur), "%02d:%02d:%02d", secs / 3600, secs / 60 % 60, secs % 60);
      return {{"id", media_id(rng)}, {"title", pick(rng, titles)}, {"seconds", secs},
              {"duration", dur}, {"type", "yt"}, {"meta", json::object()},
              {"currentTime", 0}, {"paused", false},
              {"uid", static_cast<int>(rng() % 100000)}};
    }
    case k_playlist:
    default: {
      static const char* actions[] = {"add", "delete", "move"};
      return {{"action", pick(rng, actions)},
              {"uid", static_cast<int>(rng() % 100000)},
              {"item", {{"media", {{"id", media_id(rng)}, {"title", pick(rng, titles)},
                                   {"seconds", 60 + static_cast<int>(rng() % 3600)},
                                   {"type", "yt"}}},
                        {"queueby", pick(rng, users)}, {"temp", false}}}};
    }
  }
}

frame make_frame(kind k, const std::string& channel, const options& o, std::mt19937_64& rng,
                 std::int64_t epoch_ms) {
  frame f;
  f.k = k;
  f.subject = kryten::subjects::event(channel, event_names[k]);
  auto payload = make_payload(k, rng, epoch_ms);
  auto build = [&](const nlohmann::json& p) {
    std::string pl = p.dump();
    pl.pop_back();  // the closing '}'
    pl += ",\"sent_ns\":";
    std::string body = "{\"event_name\":\"" + std::string{event_names[k]} + "\",\"payload\":" + pl;
    f.off_sent = body.size();
    body.append(sent_width, ' ');
    body += "},\"channel\":" + nlohmann::json(channel).dump() +
            ",\"domain\":" + nlohmann::json(o.domain).dump() + ",\"timestamp\":\"";
    f.off_iso = body.size();
    body.append(kbench::iso_len, '0');
    body += "\",\"correlation_id\":\"";
    auto uuid = kbench::uuid4(rng);
    body += uuid;
    f.off_corr = body.size() - 12;
    body += "\"}";
    return body;
  };
  f.body = build(payload);
  if (o.size > f.body.size()) {
    std::string pad(o.size - f.body.size(), 'x');
    if (k == k_chat)
      payload["msg"] = payload["msg"].get<std::string>() + " " + pad;
    else
      payload["pad"] = pad;
    f.body = build(payload);
  }
  if (k == k_ping)
    f.off_user = f.body.find(ping_marker) + 1;
  return f;
}

std::vector<frame> make_ring(const options& o) {
  std::mt19937_64 rng{o.seed};
  double total = 0;
  for (auto w : o.mix)
    total += w;
  auto epoch_ms = kbench::unix_ns() / 1000000;
  std::vector<frame> ring;
  ring.reserve(o.ring);
  // Deterministic proportions: each kind gets its share of the ring (largest
  // remainder), then the ring is shuffled.
  std::vector<kind> kinds;
  for (std::size_t k = 0; k < k_count; ++k) {
    auto n = static_cast<std::size_t>(std::llround(o.mix[k] / total * static_cast<double>(o.ring)));
    if (o.mix[k] > 0 && n == 0)
      n = 1;
    kinds.insert(kinds.end(), n, static_cast<kind>(k));
  }
  while (kinds.size() > o.ring && kinds.size() > 1)
    kinds.pop_back();
  while (kinds.size() < o.ring)
    kinds.push_back(k_chat);
  std::shuffle(kinds.begin(), kinds.end(), rng);
  for (std::size_t i = 0; i < kinds.size(); ++i)
    ring.push_back(make_frame(kinds[i], o.channels[i % o.channels.size()], o, rng, epoch_ms));
  return ring;
}

// -- sending -------------------------------------------------------------------------

/// Writes the send time into a frame: sent_ns, the ISO timestamp (the seconds
/// part cached), the correlation id's tail (a sequence number) and, for pings,
/// the username.
struct stamper {
  std::int64_t cached_sec = -1;
  char iso[kbench::iso_len];

  void stamp(frame& f, std::int64_t mono, std::int64_t wall, std::uint64_t seq) {
    char* b = f.body.data();
    char digits[24];
    int n = std::snprintf(digits, sizeof(digits), "%lld", static_cast<long long>(mono));
    std::memcpy(b + f.off_sent, digits, static_cast<std::size_t>(n));
    std::memset(b + f.off_sent + n, ' ', sent_width - static_cast<std::size_t>(n));
    auto sec = wall / 1000000000;
    if (sec != cached_sec) {
      kbench::write_iso(iso, wall);
      cached_sec = sec;
    }
    auto us = static_cast<int>((wall % 1000000000) / 1000);
    for (int i = 25; i >= 20; --i, us /= 10)  // "...:SS.uuuuuu+00:00": micros at 20..25
      iso[i] = static_cast<char>('0' + us % 10);
    std::memcpy(b + f.off_iso, iso, kbench::iso_len);
    char hex[16];
    std::snprintf(hex, sizeof(hex), "%012llx", static_cast<unsigned long long>(seq & 0xFFFFFFFFFFFFULL));
    std::memcpy(b + f.off_corr, hex, 12);
    if (f.off_user != std::string::npos) {
      std::snprintf(digits, sizeof(digits), "%020lld", static_cast<long long>(mono));
      std::memcpy(b + f.off_user, digits, 20);
    }
  }
};

void sleep_until(std::int64_t mono_target) {
  timespec ts{static_cast<time_t>(mono_target / 1000000000), static_cast<long>(mono_target % 1000000000)};
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
}

int run(const options& o) {
  auto ring = make_ring(o);
  std::size_t frame_bytes = 0;
  for (auto& f : ring)
    frame_bytes += f.body.size();

  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, o.server.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(opts, "kryten-load");
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 5000);
  if (s == NATS_OK) s = natsOptions_SetIOBufSize(opts, 256 * 1024);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, 0);
  if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, o.send_asap.value_or(o.rate > 0));
  if (s == NATS_OK) s = natsConnection_Connect(&nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    std::cerr << "kryten-load: cannot connect to " << o.server << ": " << natsStatus_GetText(s) << "\n";
    return 1;
  }

  const std::int64_t limit = o.count > 0 ? o.count : INT64_MAX;
  const std::int64_t t0 = kbench::mono_ns();
  const std::int64_t first_unix = kbench::unix_ns();
  const std::int64_t end = o.duration > 0 ? t0 + static_cast<std::int64_t>(o.duration * 1e9) : INT64_MAX;
  // Paced: wake up once per batch (1 ms worth of events, at least one event).
  const std::int64_t batch = o.rate > 0 ? std::max<std::int64_t>(1, static_cast<std::int64_t>(o.rate / 1000)) : 256;
  stamper st;
  std::int64_t sent = 0, pings = 0, errors = 0, bytes = 0, last_flush = 0, flush_errors = 0;
  std::int64_t next_report = t0 + 1000000000LL, reported = 0, last_ns = t0;
  std::uint64_t seq = (static_cast<std::uint64_t>(first_unix) & 0xFFFFFF) << 24;

  while (sent < limit && !stop_flag) {
    std::int64_t now = kbench::mono_ns();
    if (now >= end)
      break;
    std::int64_t n;
    if (o.rate > 0) {
      // Event k (0-based) is due at t0 + k / rate.
      auto due = static_cast<std::int64_t>(static_cast<double>(now - t0) * o.rate / 1e9) + 1;
      due = std::min(due, limit);
      if (due <= sent) {
        auto wake = t0 + static_cast<std::int64_t>(static_cast<double>(sent + batch - 1) * 1e9 / o.rate);
        sleep_until(std::min(wake, end));
        continue;
      }
      n = std::min<std::int64_t>(due - sent, 4 * batch);  // catch up in bounded bursts
    } else {
      n = std::min<std::int64_t>(batch, limit - sent);
    }
    for (std::int64_t i = 0; i < n; ++i) {
      auto& f = ring[static_cast<std::size_t>(sent) % ring.size()];
      auto mono = kbench::mono_ns();
      st.stamp(f, mono, kbench::unix_ns(), seq++);
      if (natsConnection_Publish(nc, f.subject.c_str(), f.body.data(),
                                 static_cast<int>(f.body.size())) != NATS_OK)
        ++errors;
      else
        bytes += static_cast<std::int64_t>(f.body.size());
      pings += f.k == k_ping;
      ++sent;
      last_ns = mono;
    }
    if (sent - last_flush >= o.flush_every) {
      if (natsConnection_FlushTimeout(nc, 10000) != NATS_OK)
        ++flush_errors;
      last_flush = sent;
    }
    if (!o.quiet && now >= next_report) {
      std::fprintf(stderr, "kryten-load: %lld sent (%.0f/s over the last second)\n",
                   static_cast<long long>(sent), static_cast<double>(sent - reported) * 1e9 / static_cast<double>(now - next_report + 1000000000LL));
      reported = sent;
      next_report = now + 1000000000LL;
    }
  }
  if (natsConnection_FlushTimeout(nc, 10000) != NATS_OK)
    ++flush_errors;
  auto finished = kbench::mono_ns();
  natsConnection_Close(nc);
  natsConnection_Destroy(nc);

  double elapsed = static_cast<double>(last_ns - t0) / 1e9;
  double total_elapsed = static_cast<double>(finished - t0) / 1e9;
  double achieved = elapsed > 0 ? static_cast<double>(sent - 1) / elapsed : 0;
  nlohmann::json mix;
  for (std::size_t k = 0; k < k_count; ++k)
    mix[kind_names[k]] = o.mix[k];
  nlohmann::json j{{"sent", sent},
                   {"pings", pings},
                   {"publish_errors", errors},
                   {"flush_errors", flush_errors},
                   {"bytes", bytes},
                   {"avg_frame_bytes", ring.empty() ? 0 : frame_bytes / ring.size()},
                   {"rate_target", o.rate},
                   {"rate_achieved", std::round(achieved)},
                   {"elapsed_s", elapsed},
                   {"elapsed_with_flush_s", total_elapsed},
                   {"first_ns", t0},
                   {"last_ns", last_ns},
                   {"first_unix_ns", first_unix},
                   {"channels", o.channels},
                   {"send_asap", o.send_asap.value_or(o.rate > 0)},
                   {"mix", mix},
                   {"interrupted", static_cast<bool>(stop_flag)}};
  if (o.json) {
    std::cout << j.dump() << std::endl;
  } else {
    std::printf("sent %lld events (%lld !ping) in %.3f s: %.0f events/s (target %s), %lld publish errors, avg %zu bytes\n",
                static_cast<long long>(sent), static_cast<long long>(pings), elapsed, achieved,
                o.rate > 0 ? std::to_string(static_cast<long long>(o.rate)).c_str() : "max",
                static_cast<long long>(errors), ring.empty() ? 0 : frame_bytes / ring.size());
  }
  return errors || flush_errors ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  try {
    o = parse(argc, argv);
  } catch (const usage_error& e) {
    std::cerr << "kryten-load: " << e.what() << "\n(see kryten-load --help)\n";
    return 2;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  int rc = run(o);
  nats_Close();
  return rc;
}
