// kryten-ctl's command line: the subcommand, its arguments and the
// connection options, parsed without side effects (usage errors are thrown).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "nats_link.hpp"

namespace kryten::ctl {

/// A command line that cannot be used: exit code 2.
class usage_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct ctl_options {
  std::string command;           // ls, ping, health, stats, watch, restart, help
  std::string service;           // ping, health, stats
  kryten::apps::link_options link;
  bool json = false;
  double timeout = 2;            // seconds to wait for answers, 0.1..60
  std::string monitor = "monitor";  // the monitor's service name (ls)
  // watch
  long count = 0;                // stop after this many events (0: until a signal)
  double duration = 0;           // stop after this many seconds (0: until a signal)
  // restart
  std::string reason;
  double delay = 5;
  bool yes = false;
};

/// Parses argv (argv[0] is the program). Throws usage_error.
ctl_options parse_ctl_options(const std::vector<std::string>& args);

/// The --help text.
std::string ctl_usage();

}  // namespace kryten::ctl
