// The echo bot: answers "!ping" in chat with "Pong! <username>" through the
// robot's say command, and serves a "ping" command of its own.
//
//   echo_bot --config bot.json
//
// Exit codes: 0 after a normal stop (SIGINT/SIGTERM), 1 when NATS cannot be
// reached or is lost for good, 2 for a bad command line or configuration.
#include <iostream>
#include <string>

#include <kryten/kryten.hpp>

namespace {

std::optional<std::string> unless_empty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>{s};
}

void add_handlers(kryten::client& client) {
  client.on("chatmsg", [&client](const kryten::chat_message& msg) {
    if (msg.shadow || msg.message.rfind("!ping", 0) != 0)
      return;  // shadow-muted users get no answer
    client.send_command("robot", "say", {{"message", "Pong! " + msg.username}},
                        unless_empty(msg.domain), unless_empty(msg.channel));
  });
  client.on_command("ping", [&client](const kryten::command_request&) {
    return nlohmann::json{{"pong", true}, {"instance_id", client.instance_id()}};
  });
}

}  // namespace

int main(int argc, char** argv) {
  auto config = kryten::config_from_command_line(argc, argv, std::cerr);
  if (!config)
    return 2;
  kryten::client client{*config};
  add_handlers(client);
  try {
    client.connect();
  } catch (const kryten::connect_error&) {
    return 1;  // the client has logged why
  }
  return client.run();
}
