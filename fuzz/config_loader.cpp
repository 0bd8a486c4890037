// Fuzz target: kryten::parse_config (api/config.cpp): ${VAR} substitution,
// JSON parsing, defaults and validation (PROTOCOL.md §7).
//
// The input is the text of a configuration file. parse_config either returns
// a configuration that satisfies every documented rule (checked below) or
// throws kryten::config_error naming a field. Any other exception type, a
// crash or a sanitizer report is a bug.
//
// LLVMFuzzerInitialize sets a few KRYTEN_FUZZ_* variables so that ${VAR}
// paths are taken: values that are URLs, numbers, JSON fragments, a quote,
// an empty string, another ${VAR} (must not be expanded again) and bytes that
// are not UTF-8. The seeds in corpus/config_loader use them.
//
// Note: nats.tls_ca/tls_cert/tls_key name files that parse_config opens for
// reading (never writes); run with stdin redirected from /dev/null so that a
// generated "/dev/stdin" cannot block (scripts/fuzz.sh does).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "kryten/config.hpp"

namespace {

volatile std::size_t sink;

bool is_trimmed_nonempty(const std::string& s) {
  constexpr std::string_view space = " \t\r\n\f\v";
  return !s.empty() && space.find(s.front()) == std::string_view::npos &&
         space.find(s.back()) == std::string_view::npos;
}

bool valid_port(const std::optional<int>& p) { return !p || (*p >= 1 && *p <= 65535); }

void check_config(const kryten::kryten_config& c) {
  KRYTEN_FUZZ_CHECK(!c.nats.servers.empty());
  for (const auto& s : c.nats.servers)
    KRYTEN_FUZZ_CHECK(is_trimmed_nonempty(s));
  KRYTEN_FUZZ_CHECK(c.nats.connect_timeout > 0);
  KRYTEN_FUZZ_CHECK(c.nats.reconnect_time_wait >= 0);
  KRYTEN_FUZZ_CHECK(c.nats.max_reconnect_attempts >= -1);
  KRYTEN_FUZZ_CHECK(c.nats.ping_interval > 0);
  KRYTEN_FUZZ_CHECK(c.nats.pending_msgs_limit >= 1 || c.nats.pending_msgs_limit == -1);
  KRYTEN_FUZZ_CHECK(c.nats.pending_bytes_limit >= 1 || c.nats.pending_bytes_limit == -1);
  KRYTEN_FUZZ_CHECK(c.nats.reconnect_buffer_size >= 1);
  KRYTEN_FUZZ_CHECK(c.nats.tls_cert.has_value() == c.nats.tls_key.has_value());
  KRYTEN_FUZZ_CHECK(!c.channels.empty());
  for (const auto& ch : c.channels) {
    KRYTEN_FUZZ_CHECK(is_trimmed_nonempty(ch.domain));
    KRYTEN_FUZZ_CHECK(is_trimmed_nonempty(ch.channel));
  }
  if (c.service) {
    const auto& s = *c.service;
    KRYTEN_FUZZ_CHECK(!s.name.empty());
    KRYTEN_FUZZ_CHECK(s.name.find('.') == std::string::npos);
    for (char ch : s.name)
      KRYTEN_FUZZ_CHECK(!(ch >= 'A' && ch <= 'Z'));
    KRYTEN_FUZZ_CHECK(s.heartbeat_interval >= 5 && s.heartbeat_interval <= 300);
    KRYTEN_FUZZ_CHECK(is_trimmed_nonempty(s.health_host));
    KRYTEN_FUZZ_CHECK(valid_port(s.health_port));
    KRYTEN_FUZZ_CHECK(valid_port(s.metrics_port));
    KRYTEN_FUZZ_CHECK(!s.health_path.empty() && s.health_path.front() == '/');
    KRYTEN_FUZZ_CHECK(!s.metrics_path.empty() && s.metrics_path.front() == '/');
    KRYTEN_FUZZ_CHECK(s.shutdown_timeout > 0);
    KRYTEN_FUZZ_CHECK(s.handler_restart_limit >= 0 && s.handler_restart_limit <= 1000);
    KRYTEN_FUZZ_CHECK(s.handler_restart_window > 0);
    KRYTEN_FUZZ_CHECK(s.handler_restart_backoff_min > 0);
    KRYTEN_FUZZ_CHECK(s.handler_restart_backoff_max > 0);
    KRYTEN_FUZZ_CHECK(c.service_name() == s.name);
  } else {
    KRYTEN_FUZZ_CHECK(c.service_name() == "kryten-client");
    KRYTEN_FUZZ_CHECK(!c.metrics);  // a metrics section creates a default service
  }
  if (c.metrics)
    KRYTEN_FUZZ_CHECK(valid_port(c.metrics->port));
  KRYTEN_FUZZ_CHECK(c.retry_attempts >= 0);
  KRYTEN_FUZZ_CHECK(c.retry_delay >= 0);
  KRYTEN_FUZZ_CHECK(c.handler_timeout > 0);
  KRYTEN_FUZZ_CHECK(c.chat_min_delay >= 0);
  KRYTEN_FUZZ_CHECK(c.chat_jitter >= 0);
  KRYTEN_FUZZ_CHECK(c.max_concurrent_handlers >= 1);
  KRYTEN_FUZZ_CHECK(c.handler_queue_size >= 1);
  const std::string& l = c.log_level;
  KRYTEN_FUZZ_CHECK(l == "DEBUG" || l == "INFO" || l == "WARNING" || l == "WARN" ||
                    l == "ERROR" || l == "CRITICAL");
  for (const auto& w : c.warnings)
    sink = sink + w.size();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc;
  setenv("KRYTEN_FUZZ_URL", "nats://127.0.0.1:4222", 1);
  setenv("KRYTEN_FUZZ_NAME", " My.Fuzz.Bot ", 1);
  setenv("KRYTEN_FUZZ_PORT", "8080", 1);
  setenv("KRYTEN_FUZZ_FLOAT", "2.5", 1);
  setenv("KRYTEN_FUZZ_JSON", "{\"domain\":\"cytu.be\",\"channel\":\"lounge\"}", 1);
  setenv("KRYTEN_FUZZ_QUOTE", "a\"b\\", 1);
  setenv("KRYTEN_FUZZ_EMPTY", "", 1);
  setenv("KRYTEN_FUZZ_NESTED", "${KRYTEN_FUZZ_URL}", 1);
  setenv("KRYTEN_FUZZ_BYTES", "\xff\xfe\xc3", 1);
  // A readable, non-empty file for the tls_* checks: this program.
  setenv("KRYTEN_FUZZ_FILE", *argc > 0 ? (*argv)[0] : "/proc/self/exe", 1);
  unsetenv("KRYTEN_FUZZ_UNSET");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // substitute_env alone: text without "${" comes back unchanged.
  const std::string substituted = kryten::substitute_env(text);
  if (text.find("${") == std::string_view::npos)
    KRYTEN_FUZZ_CHECK(substituted == text);

  try {
    check_config(kryten::parse_config(text));
  } catch (const kryten::config_error& e) {
    KRYTEN_FUZZ_CHECK(!e.field().empty());
    const std::string what = e.what();
    KRYTEN_FUZZ_CHECK(what.compare(0, e.field().size(), e.field()) == 0);
    sink = sink + what.size();
  }
  return 0;
}
