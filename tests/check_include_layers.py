#!/usr/bin/env python3
"""Fails when a folder includes a header from a folder that is not below it.

The folders' direct dependencies are listed here as in docs/ARCHITECTURE.md ("Folders and
dependencies"); a folder may include from any folder it reaches through them. Every
`#include "folder/..."` of a C++ file under a listed folder is checked, and a top-level folder
with C++ files that the table does not list is reported.

  check_include_layers.py SOURCE_DIR   check the repository
  check_include_layers.py --self-test  check that a planted include, an unlisted folder and a
                                       cycle in the table are reported
"""
import os
import re
import sys
import tempfile

DIRECT = {
    "common": [],
    "messages": [],
    "storage": ["common", "messages"],
    "stats": ["common"],
    "lang": ["common"],
    "kernels": ["common"],
    "retrieval": ["common"],
    "training": ["lang", "kernels", "messages"],
    "export": ["training"],
    "torch_plugin": ["training", "export"],
    "scenario": ["training", "stats", "storage"],
    "oracles": ["scenario", "retrieval"],
    "actors": ["oracles"],
    "llm": ["actors"],
    "remote": ["actors"],
    "campaign": ["remote", "llm"],
    "tools": ["campaign", "torch_plugin"],
    "bench": ["tools"],
    "fuzz": ["tools"],
    "tests": ["tools"],
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')
SOURCE_SUFFIXES = (".h", ".hpp", ".cpp", ".cc")


def reachable(direct):
    """Each folder's allowed set: what its direct dependencies reach. Raises on a cycle."""
    closed = {}

    def visit(folder, path):
        if folder in path:
            raise ValueError("the dependency table has a cycle: " + " -> ".join(path + [folder]))
        if folder not in closed:
            below = set()
            for dependency in direct[folder]:
                below |= {dependency} | visit(dependency, path + [folder])
            closed[folder] = below
        return closed[folder]

    for folder in sorted(direct):
        visit(folder, [])
    return closed


def unlisted_folders(root, direct):
    """Top-level folders with C++ files that the table does not list (build trees, which hold a
    CMakeCache.txt and generated headers, aside)."""
    found = []
    for folder in sorted(os.listdir(root)):
        top = os.path.join(root, folder)
        build_tree = os.path.exists(os.path.join(top, "CMakeCache.txt"))
        if folder in direct or folder.startswith(".") or not os.path.isdir(top) or build_tree:
            continue
        if any(name.endswith(SOURCE_SUFFIXES) for _, _, files in os.walk(top) for name in files):
            found.append(f"{folder}/: C++ files in a folder the table of tests/check_include_layers.py does not list; "
                         f"add it with its dependencies (docs/ARCHITECTURE.md, \"Folders and dependencies\")")
    return found


def violations(root, direct):
    allowed = reachable(direct)
    found = unlisted_folders(root, direct)
    for folder in sorted(direct):
        top = os.path.join(root, folder)
        for directory, subdirectories, files in os.walk(top):
            subdirectories.sort()
            for name in sorted(files):
                if not name.endswith(SOURCE_SUFFIXES):
                    continue
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8", errors="replace") as text:
                    for number, line in enumerate(text, 1):
                        match = INCLUDE.match(line)
                        if not match:
                            continue
                        target = match.group(1)
                        if target == folder or target not in direct or target in allowed[folder]:
                            continue
                        found.append(f"{os.path.relpath(path, root)}:{number}: {folder}/ includes from {target}/, "
                                     f"which is not below it (docs/ARCHITECTURE.md, \"Folders and dependencies\")")
    return found


def self_test():
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "actors"))
        with open(os.path.join(root, "actors", "planted.cpp"), "w") as planted:
            planted.write('#include "lang/program.h"\n#include "campaign/loop.h"\n')
        found = violations(root, DIRECT)
        assert len(found) == 1 and "actors/planted.cpp:2" in found[0], found
        os.makedirs(os.path.join(root, "newfolder"))
        with open(os.path.join(root, "newfolder", "x.h"), "w") as unlisted:
            unlisted.write("#pragma once\n")
        found = violations(root, DIRECT)
        assert len(found) == 2 and found[0].startswith("newfolder/"), found
        os.makedirs(os.path.join(root, "out", "messages"))
        for name, text in (("CMakeCache.txt", ""), ("messages/schema.capnp.h", "#pragma once\n")):
            with open(os.path.join(root, "out", name), "w") as generated:
                generated.write(text)
        assert violations(root, DIRECT) == found, "a build tree was reported"
    try:
        reachable({"a": ["b"], "b": ["a"]})
    except ValueError:
        return 0
    raise AssertionError("a cycle in the table was not reported")


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    found = violations(argv[1], DIRECT)
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
