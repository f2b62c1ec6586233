// asiarch check: a run's event log against the invariants every campaign keeps (campaign/log_check.h).
#include <iostream>

#include "campaign/log_check.h"
#include "storage/run_store.h"
#include "tools/commands.h"

namespace asiarch::tools {
namespace {

int check(const std::string& dir) {
  LogCheckReport report;
  try {
    report = check_run_log(dir);
  } catch (const storage::StorageError& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
  if (report.violation) {
    const LogViolation& v = *report.violation;
    std::cout << "check failed at seq " << v.seq << " (" << v.invariant << "): " << v.explanation << std::endl;
    return 1;
  }
  std::string invariants;
  for (const auto& name : report.invariants) invariants += (invariants.empty() ? "" : ", ") + name;
  std::cout << "check passed: " << grouped(report.events) << " events; invariants: " << invariants << std::endl;
  return 0;
}

}  // namespace

void add_check_commands(CLI::App& app, int& exit_code) {
  auto dir = std::make_shared<std::string>();
  auto* check_cmd = app.add_subcommand(
      "check", "Check a run's event log: hash chain, virtual time, jobs, pool and summary (exit 1 names the first violation)");
  check_cmd->add_option("dir", *dir, "Run directory written by `asiarch run`")->required();
  check_cmd->callback([dir, &exit_code] { exit_code = check(*dir); });
}

}  // namespace asiarch::tools
