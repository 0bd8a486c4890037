// Test support: a file in $TMPDIR (or /tmp) holding a text, removed on
// destruction (configurations for bots started as child processes); a
// folder likewise (a JetStream store).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace kryten::test {

class temp_file {
public:
  explicit temp_file(const std::string& text, const std::string& suffix = ".json") {
    const char* dir = std::getenv("TMPDIR");
    std::string tmpl = std::string{(dir != nullptr && *dir != '\0') ? dir : "/tmp"}
                       + "/kryten-test-XXXXXX" + suffix;
    int fd = ::mkstemps(tmpl.data(), static_cast<int>(suffix.size()));
    if (fd < 0)
      throw std::runtime_error("mkstemps failed for " + tmpl);
    ::close(fd);
    path_ = tmpl;
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out)
      throw std::runtime_error("cannot write " + path_);
  }
  ~temp_file() { ::unlink(path_.c_str()); }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

/// A new folder in $TMPDIR (or /tmp), removed with its contents on destruction.
class temp_dir {
public:
  temp_dir() {
    const char* dir = std::getenv("TMPDIR");
    std::string tmpl =
      std::string{(dir != nullptr && *dir != '\0') ? dir : "/tmp"} + "/kryten-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

}  // namespace kryten::test
