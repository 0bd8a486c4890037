#include "kryten/subjects.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace kryten {
namespace {

constexpr std::size_t max_token_chars = 100;
constexpr std::size_t max_subject_chars = 255;

// Every character PROTOCOL.md §1 drops from a token ('.', '*', '>' and the
// punctuation list).
constexpr std::string_view dropped_chars = ".*>!@#$%^&()+=[]{|}\\:;\"'<>,?/";

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// A UTF-8 continuation byte does not start a character.
bool is_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// Characters are counted as code points, as kryten-py (Python str) does, so
// that a multi-byte character is never cut in half.
std::size_t char_count(std::string_view text) {
  std::size_t n = 0;
  for (char c : text)
    n += is_continuation(c) ? 0 : 1;
  return n;
}

void truncate_chars(std::string& text, std::size_t max_chars) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!is_continuation(text[i]) && ++chars > max_chars) {
      text.resize(i);
      return;
    }
  }
}

std::string checked(std::string subject) {
  if (char_count(subject) > max_subject_chars)
    throw subject_error("subject longer than 255 characters: \"" + subject + "\"");
  return subject;
}

constexpr std::string_view events_prefix = "kryten.events.cytube.";

}  // namespace

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    c = ascii_lower(c);
  return out;
}

std::string normalize_token(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (dropped_chars.find(c) != std::string_view::npos)
      continue;
    out.push_back(c == ' ' ? '-' : ascii_lower(c));
  }
  truncate_chars(out, max_token_chars);
  if (out.empty())
    throw subject_error("subject token \"" + std::string(token) + "\" is empty after normalisation");
  return out;
}

namespace subjects {

std::string channel_events(std::string_view channel) {
  return checked(std::string(events_prefix) + normalize_token(channel) + ".>");
}

std::string event(std::string_view channel, std::string_view event_name) {
  return checked(std::string(events_prefix) + normalize_token(channel) + "." + normalize_token(event_name));
}

std::string command(std::string_view service) {
  return checked("kryten." + normalize_token(service) + ".command");
}

std::string lifecycle(std::string_view service, std::string_view kind) {
  return checked("kryten.lifecycle." + normalize_token(service) + "." + std::string(kind));
}

}  // namespace subjects
}  // namespace kryten
