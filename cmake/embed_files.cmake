# Writes OUT: a C++ file defining `const std::vector<EmbeddedFile>& NAMESPACE::SYMBOL()` that
# holds the text of each of FILES, keyed by file name without directory. The texts become raw
# string literals, so a file must not contain the delimiter `)asiarch_embed"`.
set(content "#include <vector>\n#include \"common/embedded_file.h\"\nnamespace ${NAMESPACE} {\nconst std::vector<asiarch::EmbeddedFile>& ${SYMBOL}() {\n  static const std::vector<asiarch::EmbeddedFile> files = {\n")
foreach(f IN LISTS FILES)
  get_filename_component(name ${f} NAME)
  file(READ ${f} text)
  string(APPEND content "    {\"${name}\", R\"asiarch_embed(${text})asiarch_embed\"},\n")
endforeach()
string(APPEND content "  };\n  return files;\n}\n}  // namespace ${NAMESPACE}\n")
file(WRITE ${OUT}.tmp "${content}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
