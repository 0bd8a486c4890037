// kryten-monitor and kryten-ctl end to end, as an operator sees them: a real
// nats-server (JetStream on, for the kryten_services bucket), two echo_bot
// replicas and the Node peer as child processes, the monitor's HTTP answers,
// its system.services reply, kryten-ctl's output and exit codes, and the
// dashboard in headless Chromium.
#include <signal.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/temp_file.hpp"

using json = nlohmann::json;
using namespace std::chrono_literals;
using kryten::test::bus_client;
using kryten::test::child_process;
using kryten::test::free_port;
using kryten::test::nats_server;
using kryten::test::temp_dir;
using kryten::test::temp_file;
using kryten::test::wait_until;

namespace {

constexpr int heartbeat = 5;  // seconds: the shortest a configuration allows

std::string log_level() {
  const char* level = std::getenv("KRYTEN_TEST_LOG_LEVEL");
  return level != nullptr ? level : "WARNING";
}

json service_config(const std::string& url, const std::string& name, int health_port) {
  return {{"nats", {{"servers", {url}}, {"connect_timeout", 2}, {"reconnect_time_wait", 0.2}}},
          {"channels", {{{"domain", "cytu.be"}, {"channel", "lounge"}}}},
          {"service",
           {{"name", name},
            {"version", "1.4.0"},
            {"heartbeat_interval", heartbeat},
            {"health_port", health_port},
            {"health_host", "127.0.0.1"},
            {"shutdown_timeout", 3}}},
          {"log_level", log_level()}};
}

json monitor_config(const std::string& url, int http_port) {
  auto cfg = service_config(url, "monitor", free_port());
  cfg["monitor"] = {{"http_host", "127.0.0.1"},
                    {"http_port", http_port},
                    {"health_poll_interval", 1},
                    {"health_timeout", 1},
                    {"service_api_interval", 2},
                    {"page_refresh", 2}};
  return cfg;
}

/// GET http://127.0.0.1:port/path; nullopt when nothing answered.
std::optional<httplib::Result> http_get(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(1, 0);
  c.set_read_timeout(2, 0);
  auto res = c.Get(path.c_str());
  if (!res)
    return std::nullopt;
  return res;
}

json api_services(int port) {
  auto res = http_get(port, "/api/services");
  if (!res || (*res)->status != 200)
    return json::object();
  return json::parse((*res)->body, nullptr, false);
}

/// The /api/services entries of one service.
std::vector<json> instances_of(const json& api, const std::string& service) {
  std::vector<json> out;
  if (!api.is_object() || !api.contains("services"))
    return out;
  for (auto& s : api["services"])
    if (s.value("service", "") == service)
      out.push_back(s);
  return out;
}

std::optional<json> instance(const json& api, const std::string& instance_id) {
  if (!api.is_object() || !api.contains("services"))
    return std::nullopt;
  for (auto& s : api["services"])
    if (s.value("instance_id", json()) == instance_id)
      return s;
  return std::nullopt;
}

std::string state_of(int port, const std::string& instance_id) {
  auto i = instance(api_services(port), instance_id);
  return i ? i->value("state", "") : "";
}

/// An instance's id from its startup event on the bus.
std::string wait_instance_id(bus_client& bus, const std::string& service, std::size_t nth,
                             std::chrono::milliseconds deadline) {
  auto m = bus.wait_for("kryten.lifecycle." + service + ".startup", deadline, nth);
  REQUIRE(m);
  return json::parse(m->data).value("instance_id", "");
}

struct ctl_result {
  int code;
  std::string out;
  std::string err;
};

ctl_result run_ctl(std::vector<std::string> args) {
  args.insert(args.begin(), KRYTEN_CTL_EXE);
  child_process ctl{args};
  auto code = ctl.wait_for_exit(30s);
  REQUIRE(code);
  return {*code, ctl.stdout_text(), ctl.stderr_text()};
}

std::unique_ptr<child_process> start_monitor(const std::string& config_path) {
  return std::make_unique<child_process>(
    std::vector<std::string>{KRYTEN_MONITOR_EXE, "--config", config_path});
}

std::string chromium() {
  for (auto name : {"chromium", "chromium-browser", "google-chrome"})
    for (auto dir : {"/usr/bin/", "/usr/local/bin/"})
      if (std::filesystem::exists(std::string{dir} + name))
        return std::string{dir} + name;
  return "";
}

/// Loads the page in headless Chromium and returns the DOM it rendered.
std::string dump_dom(const std::string& url, const std::string& profile_dir) {
  child_process browser{{chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--user-data-dir=" + profile_dir,
                         "--dump-dom", url}};
  auto code = browser.wait_for_exit(60s);
  REQUIRE(code);
  INFO("chromium stderr: " << browser.stderr_text());
  REQUIRE(*code == 0);
  return browser.stdout_text();
}

void screenshot(const std::string& url, const std::string& profile_dir, const std::string& png) {
  child_process browser{{chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--user-data-dir=" + profile_dir,
                         "--hide-scrollbars", "--window-size=1280,520", "--screenshot=" + png,
                         url}};
  auto code = browser.wait_for_exit(60s);
  REQUIRE(code);
  CHECK(*code == 0);
}

/// The DOM holds a row for the instance in the given state.
bool shows(const std::string& dom, const std::string& key, const std::string& state) {
  return dom.find("data-key=\"" + key + "\" data-state=\"" + state + "\"") != std::string::npos;
}

}  // namespace

TEST_CASE("monitor: replicas and the Node peer, stale after a SIGKILL, down after a SIGTERM, "
          "read back from KV by a restarted monitor, with kryten-ctl and the dashboard on the way") {
  temp_dir js;
  nats_server::options opts;
  opts.jetstream_dir = js.path();
  nats_server server{opts};
  bus_client bus{server.url()};
  bus.subscribe("kryten.lifecycle.>");

  // The services first: the monitor must find them by its discovery poll.
  temp_file echo_a_cfg{service_config(server.url(), "echo-bot", free_port()).dump()};
  temp_file echo_b_cfg{service_config(server.url(), "echo-bot", free_port()).dump()};
  temp_file node_cfg{service_config(server.url(), "node-echo", free_port()).dump()};
  auto echo_a = std::make_unique<child_process>(
    std::vector<std::string>{KRYTEN_ECHO_BOT_EXE, "--config", echo_a_cfg.path()});
  auto id_a = wait_instance_id(bus, "echo-bot", 1, 20s);
  auto echo_b = std::make_unique<child_process>(
    std::vector<std::string>{KRYTEN_ECHO_BOT_EXE, "--config", echo_b_cfg.path()});
  auto id_b = wait_instance_id(bus, "echo-bot", 2, 20s);
  child_process node{{"node", std::string{KRYTEN_NODE_PEER_DIR} + "/echo-bot.mjs", "--config",
                      node_cfg.path()}};
  auto id_node = wait_instance_id(bus, "node-echo", 1, 30s);
  REQUIRE(id_a != id_b);

  int http_port = free_port();
  temp_file monitor_cfg{monitor_config(server.url(), http_port).dump()};
  auto monitor = start_monitor(monitor_cfg.path());

  // -- the three instances, at once (discovery), up, health polled ---------------
  bool listed = wait_until(
    [&] {
      auto api = api_services(http_port);
      return instances_of(api, "echo-bot").size() == 2 && instances_of(api, "node-echo").size() == 1;
    },
    15s, 100ms);
  INFO("monitor stderr: " << monitor->stderr_text());
  REQUIRE(listed);
  auto api = api_services(http_port);
  for (auto& id : {id_a, id_b, id_node}) {
    auto i = instance(api, id);
    REQUIRE(i);
    CHECK(i->value("state", "") == "up");
    CHECK(i->value("version", "") == "1.4.0");
  }
  CHECK(instance(api, id_a)->value("heartbeat_interval", 0.0) == heartbeat);
  // /health of each echo replica polled: 200 and a latency.
  REQUIRE(wait_until(
    [&] {
      auto now = api_services(http_port);
      for (auto& id : {id_a, id_b}) {
        auto i = instance(now, id);
        if (!i || !(*i)["last_health"].is_object()
            || (*i)["last_health"].value("status_code", 0) != 200)
          return false;
      }
      return true;
    },
    10s, 100ms));
  CHECK(instance(api_services(http_port), id_a).value()["last_health"].value("latency_ms", -1.0) >= 0);
  // The Service API answers join the same entries.
  REQUIRE(wait_until(
    [&] {
      auto now = api_services(http_port);
      return instance(now, id_a).value().value("service_api", false)
             && instance(now, id_node).value().value("service_api", false);
    },
    10s, 100ms));
  // The Node peer's Service API id is its own; its metadata names the instance: one entry.
  CHECK(instances_of(api_services(http_port), "node-echo").size() == 1);

  // -- system.services on kryten.monitor.command -------------------------------
  {
    auto reply = bus.request("kryten.monitor.command",
                             json{{"command", "system.services"}, {"args", json::object()}}.dump(), 5s);
    REQUIRE(reply);
    auto r = json::parse(*reply);
    CHECK(r.value("success", false));
    auto services = r["data"]["services"];
    int echo = 0;
    for (auto& s : services) {
      for (auto field : {"name", "version", "hostname", "first_seen", "last_heartbeat",
                         "heartbeat_count", "seconds_since_heartbeat", "is_stale", "health_url",
                         "metrics_url", "instance_id", "state"})
        CHECK(s.contains(field));
      if (s.value("name", "") == "echo-bot") {
        ++echo;
        CHECK(s.value("is_stale", true) == false);
        CHECK(s.value("health_url", "").rfind("http://127.0.0.1:", 0) == 0);
      }
    }
    CHECK(echo == 2);
  }

  // -- /metrics is promtool-clean; /health answers ----------------------------------
  {
    auto res = http_get(http_port, "/metrics");
    REQUIRE(res);
    CHECK((*res)->status == 200);
    CHECK((*res)->body.find("kryten_monitor_instance_up{service=\"echo-bot\",instance_id=\"" + id_a)
          != std::string::npos);
    temp_file metrics{(*res)->body, ".prom"};
    child_process promtool{{"sh", "-c", "promtool check metrics < " + metrics.path()}};
    auto code = promtool.wait_for_exit(30s);
    REQUIRE(code);
    INFO("promtool: " << promtool.stdout_text() << promtool.stderr_text());
    CHECK(*code == 0);
    auto health = http_get(http_port, "/health");
    REQUIRE(health);
    CHECK((*health)->status == 200);
    CHECK(json::parse((*health)->body).value("status", "") == "healthy");
  }

  // -- kryten-ctl against the same bus -------------------------------------------------
  {
    auto ls = run_ctl({"--server", server.url(), "--json", "ls"});
    CHECK(ls.code == 0);
    auto j = json::parse(ls.out, nullptr, false);
    REQUIRE(j.is_object());
    CHECK(j.value("source", "") == "monitor");
    CHECK(j["services"].size() >= 3);
    auto table = run_ctl({"--server", server.url(), "ls"});
    CHECK(table.code == 0);
    CHECK(table.out.find(id_a) != std::string::npos);
    CHECK(table.out.find("node-echo") != std::string::npos);
    // Without a monitor: a discovery poll.
    auto polled = run_ctl({"--server", server.url(), "--monitor", "nobody", "--timeout", "1", "--json", "ls"});
    CHECK(polled.code == 0);
    auto pj = json::parse(polled.out, nullptr, false);
    CHECK(pj.value("source", "") == "discovery");
    CHECK(pj["services"].size() >= 3);

    auto ping = run_ctl({"--server", server.url(), "--json", "ping", "echo-bot"});
    CHECK(ping.code == 0);
    auto answers = json::parse(ping.out, nullptr, false);
    std::set<std::string> ids;
    for (auto& a : answers)
      if (a.value("via", "") == "$SRV.PING")
        ids.insert(a.value("instance_id", ""));
    CHECK(ids == std::set<std::string>{id_a, id_b});
    CHECK(run_ctl({"--server", server.url(), "--timeout", "0.5", "ping", "no-such-service"}).code == 1);

    auto health = run_ctl({"--server", server.url(), "--json", "health", "echo-bot"});
    CHECK(health.code == 0);
    CHECK(json::parse(health.out, nullptr, false).value("status", "") == "healthy");
    auto stats = run_ctl({"--server", server.url(), "--json", "stats", "echo-bot"});
    CHECK(stats.code == 0);
    CHECK(json::parse(stats.out, nullptr, false).size() == 2);

    // watch: the next heartbeats, one line each.
    auto watch = run_ctl({"--server", server.url(), "watch", "--count", "2", "--for", "20"});
    CHECK(watch.code == 0);
    CHECK(watch.out.find("heartbeat") != std::string::npos);
  }

  // -- SIGKILL one replica: stale after three heartbeat intervals -----------------
  auto killed_at = std::chrono::steady_clock::now();
  echo_a->signal(SIGKILL);
  REQUIRE(echo_a->wait_for_exit(5s));
  CHECK(state_of(http_port, id_a) == "up");
  REQUIRE(wait_until([&] { return state_of(http_port, id_a) == "stale"; }, 30s, 200ms));
  auto silent = std::chrono::steady_clock::now() - killed_at;
  // Stale comes after 3 x 5 s of silence since the last heartbeat, which was
  // at most one interval before the kill.
  CHECK(silent >= 3 * std::chrono::seconds(heartbeat) - std::chrono::seconds(heartbeat) - 1s);
  CHECK(silent <= 3 * std::chrono::seconds(heartbeat) + 3s);

  // -- SIGTERM the other: down, with its reason --------------------------------------
  echo_b->signal(SIGTERM);
  REQUIRE(echo_b->wait_for_exit(15s));
  REQUIRE(wait_until([&] { return state_of(http_port, id_b) == "down"; }, 10s, 100ms));
  CHECK(instance(api_services(http_port), id_b)->value("shutdown_reason", "") == "Received SIGTERM");
  CHECK(state_of(http_port, id_node) == "up");

  // -- the dashboard in a real browser -----------------------------------------------
  {
    REQUIRE_FALSE(chromium().empty());
    temp_dir profile;
    std::string url = "http://127.0.0.1:" + std::to_string(http_port) + "/";
    auto dom = dump_dom(url, profile.path());
    INFO("DOM: " << dom);
    auto now = api_services(http_port);
    CHECK(shows(dom, instance(now, id_a)->value("key", ""), "stale"));
    CHECK(shows(dom, instance(now, id_b)->value("key", ""), "down"));
    CHECK(shows(dom, instance(now, id_node)->value("key", ""), "up"));
    CHECK(dom.find("Received SIGTERM") != std::string::npos);
    CHECK(dom.find("node-echo") != std::string::npos);
    CHECK(dom.find("<script") == std::string::npos);
    // KRYTEN_SCREENSHOT=path.png keeps a picture of the page (docs/monitor-dashboard.png).
    if (const char* png = std::getenv("KRYTEN_SCREENSHOT"); png != nullptr && *png != '\0') {
      temp_dir shot_profile;
      screenshot(url, shot_profile.path(), png);
      CHECK(std::filesystem::file_size(png) > 1000);
    }
  }

  // -- a restarted monitor reads the registry back from KV at once --------------------
  auto first_seen_node = instance(api_services(http_port), id_node)->value("first_seen", "");
  monitor->signal(SIGTERM);
  auto monitor_exit = monitor->wait_for_exit(15s);
  REQUIRE(monitor_exit);
  CHECK(*monitor_exit == 0);
  monitor = start_monitor(monitor_cfg.path());
  // Neither the killed replica nor the stopped one answers a discovery poll:
  // only the store knows them.
  // Its HTTP server starts after the store is read: its first answer has it all.
  REQUIRE(wait_until([&] { return api_services(http_port).contains("services"); }, 10s, 50ms));
  auto back = api_services(http_port);
  REQUIRE(instance(back, id_a));
  REQUIRE(instance(back, id_b));
  REQUIRE(instance(back, id_node));
  CHECK(instance(back, id_a)->value("state", "") == "stale");
  CHECK(instance(back, id_b)->value("state", "") == "down");
  CHECK(instance(back, id_b)->value("shutdown_reason", "") == "Received SIGTERM");
  CHECK(instance(back, id_node)->value("first_seen", "") == first_seen_node);
  REQUIRE(wait_until([&] { return state_of(http_port, id_node) == "up"; }, 10s, 100ms));
}

TEST_CASE("kryten-ctl: usage errors exit 2, an unreachable server 1, restart sends a notice") {
  CHECK(run_ctl({}).code == 2);
  CHECK(run_ctl({"frobnicate"}).code == 2);
  CHECK(run_ctl({"ping"}).code == 2);  // no SERVICE
  CHECK(run_ctl({"--timeout", "abc", "ls"}).code == 2);
  auto help = run_ctl({"--help"});
  CHECK(help.code == 0);
  CHECK(help.out.find("restart --reason TEXT") != std::string::npos);

  int closed = free_port();
  auto down = run_ctl({"--server", "nats://127.0.0.1:" + std::to_string(closed), "ls"});
  CHECK(down.code == 1);
  CHECK_FALSE(down.err.empty());

  nats_server server;
  bus_client bus{server.url()};
  bus.subscribe("kryten.lifecycle.group.restart");
  auto refused = run_ctl({"--server", server.url(), "restart", "--reason", "deploy"});
  CHECK(refused.code == 2);
  CHECK(refused.err.find("--yes") != std::string::npos);
  CHECK(run_ctl({"--server", server.url(), "restart", "--yes"}).code == 2);  // no reason
  auto sent = run_ctl({"--server", server.url(), "restart", "--reason", "deploy 1.5", "--delay",
                       "2", "--yes"});
  CHECK(sent.code == 0);
  auto notice = bus.wait_for("kryten.lifecycle.group.restart", 5s);
  REQUIRE(notice);
  auto n = json::parse(notice->data);
  CHECK(n.value("reason", "") == "deploy 1.5");
  CHECK(n.value("delay_seconds", 0.0) == 2.0);
  CHECK(n.value("initiator", "") == "kryten-ctl");
  CHECK(bus.messages_on("kryten.lifecycle.group.restart").size() == 1);  // the refused ones sent none

  // Nothing on the bus: ls finds nobody (exit 1), ping likewise.
  CHECK(run_ctl({"--server", server.url(), "--timeout", "0.3", "ls"}).code == 1);
  CHECK(run_ctl({"--server", server.url(), "--timeout", "0.3", "ping", "echo-bot"}).code == 1);
}

TEST_CASE("kryten-monitor: a bad monitor section exits 2 naming the field") {
  nats_server server;
  auto cfg = monitor_config(server.url(), free_port());
  cfg["monitor"]["http_port"] = 70000;
  temp_file bad{cfg.dump()};
  auto monitor = start_monitor(bad.path());
  auto code = monitor->wait_for_exit(10s);
  REQUIRE(code);
  CHECK(*code == 2);
  CHECK(monitor->stderr_text().find("monitor.http_port") != std::string::npos);
}

TEST_CASE("kryten-monitor: after its own reconnection it polls for services again (no JetStream: in memory)") {
  nats_server server;  // without JetStream: the registry is not persisted, all else works
  temp_file echo_cfg{service_config(server.url(), "echo-bot", free_port()).dump()};
  child_process echo{{KRYTEN_ECHO_BOT_EXE, "--config", echo_cfg.path()}};
  int http_port = free_port();
  temp_file monitor_cfg{monitor_config(server.url(), http_port).dump()};
  auto monitor = start_monitor(monitor_cfg.path());
  auto last_startup_ns = [&]() -> std::int64_t {
    auto echo_instances = instances_of(api_services(http_port), "echo-bot");
    return echo_instances.size() == 1 ? echo_instances[0].value("last_startup_ns", std::int64_t{0}) : 0;
  };
  // The echo bot started first: only the monitor's discovery poll tells of it.
  REQUIRE(wait_until([&] { return last_startup_ns() > 0; }, 15s, 100ms));
  CHECK(json::parse(http_get(http_port, "/health").value()->body).value("kv_bucket", json()) == nullptr);

  server.stop();
  auto restarted_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  server.start();
  // Both reconnect; the monitor polls again and the bot answers with a new startup event.
  INFO("monitor stderr: " << monitor->stderr_text());
  CHECK(wait_until([&] { return last_startup_ns() > restarted_ns; }, 20s, 100ms));
}

TEST_CASE("kryten-ctl: user/password and token authentication, and a service's config file") {
  auto restart_with = [](std::vector<std::string> auth) {
    auth.insert(auth.end(), {"restart", "--reason", "auth check", "--delay", "0", "--yes"});
    return run_ctl(auth);
  };
  {
    nats_server::options o;
    o.user = "ops";
    o.password = "s3cret";
    nats_server server{o};
    auto url = server.url();
    CHECK(restart_with({"--server", url, "--user", "ops", "--password", "s3cret"}).code == 0);
    auto refused = restart_with({"--server", url, "--user", "ops", "--password", "wrong"});
    CHECK(refused.code == 1);
    CHECK(refused.err.find("cannot connect") != std::string::npos);
    CHECK(restart_with({"--server", url}).code == 1);
    // --config takes the connection settings of a service's configuration.
    json cfg{{"nats", {{"servers", {url}}, {"user", "ops"}, {"password", "s3cret"}}},
             {"channels", {{{"domain", "cytu.be"}, {"channel", "lounge"}}}}};
    temp_file file{cfg.dump()};
    CHECK(restart_with({"--config", file.path()}).code == 0);
    CHECK(restart_with({"--config", "/nonexistent/kryten.json"}).code == 2);
  }
  {
    nats_server::options o;
    o.token = "t0ken";
    nats_server server{o};
    auto url = server.url();
    CHECK(restart_with({"--server", url, "--token", "t0ken"}).code == 0);
    CHECK(restart_with({"--server", url, "--token", "nope"}).code == 1);
  }
}
