#pragma once
// Numbers as text for people and logs: a fixed count of decimals, as printf's %.*f writes it
// (the figures in the analyst's motivations and diagnoses, which are logged, and in the CLI's
// tables), and thousands grouped with commas (12,345 and 1,234.5).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

namespace asiarch {

inline std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

// The digits of `text` before its first '.' (after a sign) grouped in threes.
inline std::string grouped_digits(const std::string& text) {
  const size_t sign = !text.empty() && text[0] == '-' ? 1 : 0;
  const size_t end = std::min(text.find('.'), text.size());
  std::string out = text.substr(0, sign);
  for (size_t i = sign; i < end; ++i) {
    if (i > sign && (end - i) % 3 == 0) out += ',';
    out += text[i];
  }
  return out + text.substr(end);
}

inline std::string grouped(uint64_t value) { return grouped_digits(std::to_string(value)); }
inline std::string grouped(double value, int decimals) { return grouped_digits(fixed(value, decimals)); }

}  // namespace asiarch
