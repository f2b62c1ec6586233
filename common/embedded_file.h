#pragma once
// A data file compiled into the binary (cmake/embed_files.cmake), so that the program
// needs no data path at run time.
#include <string>

namespace asiarch {
struct EmbeddedFile {
  std::string name;      // file name without directory
  std::string contents;  // exact bytes
};
}  // namespace asiarch
