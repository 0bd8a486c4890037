#include <catch2/catch.hpp>

#include <string>

#include "kryten/subjects.hpp"

using kryten::normalize_token;
using kryten::subject_error;
namespace subjects = kryten::subjects;

TEST_CASE("normalize_token: PROTOCOL.md examples", "[subjects]") {
  CHECK(normalize_token("420Grindhouse") == "420grindhouse");
  CHECK(normalize_token("Test Channel") == "test-channel");
  CHECK(normalize_token("chatMsg") == "chatmsg");
}

TEST_CASE("normalize_token: removes each special character", "[subjects]") {
  const std::string removed = ".*>!@#$%^&()+=[]{|}\\:;\"'<>,?/";
  for (char c : removed) {
    INFO("character " << c);
    CHECK(normalize_token(std::string("a") + c + "b") == "ab");
  }
  CHECK(normalize_token("a.b.c") == "abc");
  CHECK(normalize_token("kryten.*.>") == "kryten");
}

TEST_CASE("normalize_token: spaces become dashes, other characters stay", "[subjects]") {
  CHECK(normalize_token(" a b ") == "-a-b-");
  CHECK(normalize_token("a_b-c~1") == "a_b-c~1");
  CHECK(normalize_token("Ünïcode") == "Ünïcode");  // ASCII lowercasing only
}

TEST_CASE("normalize_token: truncates to 100 characters", "[subjects]") {
  CHECK(normalize_token(std::string(150, 'A')) == std::string(100, 'a'));
  CHECK(normalize_token(std::string(100, 'a')) == std::string(100, 'a'));
  // Removal happens before truncation.
  CHECK(normalize_token(std::string(50, '.') + std::string(120, 'b')) == std::string(100, 'b'));
  // Characters, not bytes: a two-byte character counts once and is not cut.
  const std::string e_acute = "\xC3\xA9";
  CHECK(normalize_token(std::string(99, 'a') + e_acute + "xyz") == std::string(99, 'a') + e_acute);
}

TEST_CASE("normalize_token: empty result throws, naming the input", "[subjects]") {
  CHECK_THROWS_AS(normalize_token(""), subject_error);
  CHECK_THROWS_AS(normalize_token("..."), subject_error);
  CHECK_THROWS_AS(normalize_token("*>"), subject_error);
  CHECK_THROWS_WITH(normalize_token("!?!"), Catch::Contains("\"!?!\""));
}

TEST_CASE("to_lower: ASCII only", "[subjects]") {
  CHECK(kryten::to_lower("ChatMsg") == "chatmsg");
  CHECK(kryten::to_lower("AdDUser 42") == "adduser 42");
  CHECK(kryten::to_lower("\xC3\x89") == "\xC3\x89");
  CHECK(kryten::to_lower("") == "");
}

TEST_CASE("subject builders", "[subjects]") {
  CHECK(subjects::channel_events("420Grindhouse") == "kryten.events.cytube.420grindhouse.>");
  CHECK(subjects::event("Test Channel", "chatMsg") == "kryten.events.cytube.test-channel.chatmsg");
  CHECK(subjects::command("My.Bot") == "kryten.mybot.command");
  CHECK(subjects::command("echo-bot") == "kryten.echo-bot.command");
  CHECK(subjects::lifecycle("Echo Bot", "startup") == "kryten.lifecycle.echo-bot.startup");
  CHECK(subjects::lifecycle("svc", "heartbeat") == "kryten.lifecycle.svc.heartbeat");
  CHECK(subjects::discovery_poll == "kryten.service.discovery.poll");
  CHECK(subjects::group_restart == "kryten.lifecycle.group.restart");
}

TEST_CASE("subject builders: bad tokens and overlong subjects throw", "[subjects]") {
  CHECK_THROWS_AS(subjects::channel_events("..."), subject_error);
  CHECK_THROWS_AS(subjects::event("lounge", "*"), subject_error);
  CHECK_THROWS_AS(subjects::command(""), subject_error);
  CHECK_THROWS_AS(subjects::lifecycle("", "startup"), subject_error);
  // Two maximal tokens still fit (222 characters).
  const std::string longest = subjects::event(std::string(200, 'c'), std::string(200, 'e'));
  CHECK(longest.size() == 222);
  CHECK_THROWS_AS(subjects::lifecycle("svc", std::string(300, 'k')), subject_error);
  CHECK_NOTHROW(subjects::lifecycle(std::string(100, 's'), std::string(137, 'k')));  // 255
  CHECK_THROWS_AS(subjects::lifecycle(std::string(100, 's'), std::string(138, 'k')),
                  subject_error);
}
