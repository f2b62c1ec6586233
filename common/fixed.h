#pragma once
// A number with a fixed count of decimals, as printf's %.*f writes it: the form of every figure
// in the analyst's motivations and diagnoses (logged text) and in the CLI's tables.
#include <cstdio>
#include <string>

namespace asiarch {

inline std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

}  // namespace asiarch
