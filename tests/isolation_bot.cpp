// A bot for the isolation tests, run as a child process:
//   isolation_bot --config FILE [--block N --block-seconds S] [--slow-us U]
// --block: N handlers on chatmsg that block S seconds on a message "block";
// a fast handler answers "!ping" with a robot say command (as the echo bot);
// --slow-us: a handler on chatmsg that takes U microseconds per message "slow".
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "kryten/kryten.hpp"

int main(int argc, char** argv) {
  std::string config_path;
  int blockers = 0;
  double block_seconds = 20;
  long slow_us = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--config")
      config_path = argv[i + 1];
    else if (flag == "--block")
      blockers = std::atoi(argv[i + 1]);
    else if (flag == "--block-seconds")
      block_seconds = std::atof(argv[i + 1]);
    else if (flag == "--slow-us")
      slow_us = std::atol(argv[i + 1]);
  }
  try {
    kryten::client client{kryten::load_config(config_path)};
    for (int i = 0; i < blockers; ++i)
      client.on("chatmsg", [block_seconds](const kryten::chat_message& m) {
        if (m.message == "block")
          std::this_thread::sleep_for(std::chrono::duration<double>(block_seconds));
      });
    if (slow_us >= 0)
      client.on("chatmsg", [slow_us](const kryten::chat_message& m) {
        if (m.message == "slow")
          std::this_thread::sleep_for(std::chrono::microseconds(slow_us));
      });
    client.on("chatmsg", [&client](const kryten::chat_message& m) {
      if (m.message.rfind("!ping", 0) == 0)
        client.send_command("robot", "say", {{"message", "Pong! " + m.username}});
    });
    client.connect();
    return client.run();
  } catch (const kryten::config_error& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
