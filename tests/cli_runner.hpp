// Runs the ibmb tool as a subprocess (stdout and stderr together) for the CLI tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include <catch2/catch.hpp>

#ifdef IBMB_CLI_PATH
namespace ibmb::test {

struct cli_result {
  int code = -1;
  std::string out;  // stdout + stderr
};

inline cli_result run_cli(const std::string& args) {
  const std::string cmd = std::string(IBMB_CLI_PATH) + " " + args + " 2>&1";
  cli_result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), p)) r.out += buf.data();
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace ibmb::test
#endif
