// Uses the installed kryten package: headers, config parsing, subjects and the
// actor runtime (a client constructed and destroyed without connecting).
#include <iostream>

#include <kryten/kryten.hpp>

int main() {
  try {
    auto config = kryten::parse_config(R"({
      "nats": {"servers": ["nats://127.0.0.1:4222"]},
      "channels": [{"domain": "cytu.be", "channel": "Lounge"}],
      "service": {"name": "Consumer.Bot"}
    })");
    auto subject = kryten::subjects::command("robot");
    if (subject != "kryten.robot.command" || config.service_name() != "consumer-bot") {
      std::cerr << "unexpected: " << subject << " / " << config.service_name() << "\n";
      return 1;
    }
    {
      kryten::client client{config};  // spawns its actors; never connects
      if (client.is_connected() || client.instance_id().empty()) {
        std::cerr << "unexpected client state\n";
        return 1;
      }
    }
    std::cout << "consumer ok: " << subject << " "
              << kryten::subjects::channel_events(config.channels.front().channel) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "consumer failed: " << e.what() << "\n";
    return 1;
  }
}
